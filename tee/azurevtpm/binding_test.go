package azurevtpm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// kbsVectorDirIfPresent returns the KBS protocol vectors directory, from
// CLOISTER_KBS_VECTORS or beside the module root, and whether it exists.
func kbsVectorDirIfPresent() (string, bool) {
	dir := os.Getenv("CLOISTER_KBS_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "protocols", "kbs-vectors")
	}
	_, err := os.Stat(dir)
	return dir, err == nil
}

// trusteeVector is the evidence version 2 of an SEV-SNP Azure VM as a
// Trustee guest sends it, with the runtime-data digest it binds.
type trusteeVector struct {
	evidence []byte
	digest   []byte
	// userData is the expected user-data member of the runtime data.
	userData string
}

// loadTrusteeVector reads the vector. It skips the test when the vectors
// directory is absent, except under CI.
func loadTrusteeVector(t *testing.T) trusteeVector {
	t.Helper()
	dir, ok := kbsVectorDirIfPresent()
	if !ok {
		if os.Getenv("CI") != "" {
			t.Fatalf("KBS vectors not found at %s (set CLOISTER_KBS_VECTORS)", dir)
		}
		t.Skipf("KBS vectors not found at %s (set CLOISTER_KBS_VECTORS)", dir)
	}
	v, err := readTrusteeVector(dir)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func readTrusteeVector(dir string) (trusteeVector, error) {
	evidence, err := os.ReadFile(filepath.Join(dir, "trustee_az-snp-vtpm-evidence-v2.json"))
	if err != nil {
		return trusteeVector{}, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "trustee_az-snp-vtpm-evidence-v2.expect.json"))
	if err != nil {
		return trusteeVector{}, err
	}
	var expect struct {
		ReportData string `json:"expected_report_data_hex"`
		Derived    struct {
			UserData string `json:"hcl_user_data"`
		} `json:"derived_checks"`
	}
	if err := json.Unmarshal(raw, &expect); err != nil {
		return trusteeVector{}, err
	}
	digest, err := hex.DecodeString(expect.ReportData)
	if err != nil {
		return trusteeVector{}, err
	}
	return trusteeVector{evidence: evidence, digest: digest, userData: expect.Derived.UserData}, nil
}

// trusteeVectorTime lies inside the validity of the vector's VCEK
// (2025-01-28 to 2032-01-28) and of AMD's Milan ARK and ASK.
var trusteeVectorTime = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// verifyTrusteeVector verifies the vector's evidence against AMD's
// embedded roots and returns its claims.
func verifyTrusteeVector(t *testing.T, v trusteeVector) *attest.Claims {
	t.Helper()
	c, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: v.evidence}, attest.Options{At: trusteeVectorTime})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

func TestParseEvidenceVersion2(t *testing.T) {
	v := loadTrusteeVector(t)
	ev, err := ParseEvidence(v.evidence)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Version != 2 {
		t.Errorf("version = %d, want 2", ev.Version)
	}
	if len(ev.VCEK) == 0 {
		t.Error("no VCEK decoded")
	}
	hcl, err := ParseHCLReport(ev.HCLReport)
	if err != nil {
		t.Fatal(err)
	}
	if hcl.ReportType != ReportTypeSNP {
		t.Errorf("report type = %d, want %d", hcl.ReportType, ReportTypeSNP)
	}
	rd, err := ParseRuntimeData(hcl.VariableData)
	if err != nil {
		t.Fatal(err)
	}
	if rd.UserData != v.userData {
		t.Errorf("user-data = %s, want %s", rd.UserData, v.userData)
	}
}

func TestParseEvidenceVersion3Unsupported(t *testing.T) {
	v := loadTrusteeVector(t)
	data := bytes.Replace(v.evidence, []byte(`"version": 2`), []byte(`"version": 3`), 1)
	if bytes.Equal(data, v.evidence) {
		t.Fatal("the vector has no \"version\": 2 member to replace")
	}
	if _, err := ParseEvidence(data); !errors.Is(err, attest.ErrUnsupported) {
		t.Fatalf("error = %v, want unsupported", err)
	}
}

func TestVerifyTrusteeVector(t *testing.T) {
	v := loadTrusteeVector(t)
	c := verifyTrusteeVector(t, v)
	if !bytes.Equal(c.Nonce, v.digest) {
		t.Errorf("nonce = %x, want %x", c.Nonce, v.digest)
	}
	for _, ch := range c.Checks {
		if ch.Result == attest.CheckFailed {
			t.Errorf("check %s failed: %s", ch.Name, ch.Detail)
		}
	}
	if len(c.Chain) == 0 {
		t.Error("no certificate chain in the claims")
	}
}

func TestCheckRuntimeDigestVector(t *testing.T) {
	v := loadTrusteeVector(t)
	c := verifyTrusteeVector(t, v)
	if err := CheckRuntimeDigest(c, v.evidence, ReportTypeSNP, v.digest); err != nil {
		t.Fatal(err)
	}
	if got := checkResult(c, CheckUserData); got != attest.CheckPassed {
		t.Errorf("check %s = %q, want passed", CheckUserData, got)
	}

	// The unsigned version field can turn the user-data check off, so its
	// skip is recorded.
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(v.evidence, &doc); err != nil {
		t.Fatal(err)
	}
	doc["version"] = json.RawMessage("1")
	downgraded, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	c = verifyTrusteeVector(t, v)
	if err := CheckRuntimeDigest(c, downgraded, ReportTypeSNP, v.digest); err != nil {
		t.Fatal(err)
	}
	if got := checkResult(c, CheckUserData); got != attest.CheckNotChecked {
		t.Errorf("check %s for version 1 = %q, want not-checked", CheckUserData, got)
	}
}

func checkResult(c *attest.Claims, name string) attest.CheckResult {
	for _, ch := range c.Checks {
		if ch.Name == name {
			return ch.Result
		}
	}
	return ""
}

// withHCLReport returns the evidence with its hcl_report replaced by the
// result of edit, encoded as the guest encodes it.
func withHCLReport(t *testing.T, evidence []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(evidence, &doc); err != nil {
		t.Fatal(err)
	}
	ev, err := ParseEvidence(evidence)
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := json.Marshal(base64.URLEncoding.EncodeToString(edit(bytes.Clone(ev.HCLReport))))
	if err != nil {
		t.Fatal(err)
	}
	doc["hcl_report"] = encoded
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withUserData replaces the user-data hex in an HCL report by edit's
// result, which must be of the same length.
func withUserData(t *testing.T, edit func(string) string) func([]byte) []byte {
	return func(report []byte) []byte {
		hcl, err := ParseHCLReport(report)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := ParseRuntimeData(hcl.VariableData)
		if err != nil {
			t.Fatal(err)
		}
		old := []byte(`"` + rd.UserData + `"`)
		edited := []byte(`"` + edit(rd.UserData) + `"`)
		if len(old) != len(edited) || bytes.Count(report, old) != 1 {
			t.Fatalf("cannot replace the user data %s in the HCL report", rd.UserData)
		}
		return bytes.Replace(report, old, edited, 1)
	}
}

// withQuoteMessage returns the evidence with the vTPM quote message
// replaced by the result of edit.
func withQuoteMessage(t *testing.T, evidence []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(evidence, &doc); err != nil {
		t.Fatal(err)
	}
	var quote map[string]json.RawMessage
	if err := json.Unmarshal(doc["tpm_quote"], &quote); err != nil {
		t.Fatal(err)
	}
	var message string
	if err := json.Unmarshal(quote["message"], &message); err != nil {
		t.Fatal(err)
	}
	msg, err := hex.DecodeString(message)
	if err != nil {
		t.Fatal(err)
	}
	quote["message"], _ = json.Marshal(hex.EncodeToString(edit(msg)))
	doc["tpm_quote"], _ = json.Marshal(quote)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipHexDigit changes the hex digit at i to another digit of the same
// case.
func flipHexDigit(s string, i int) string {
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

func TestCheckRuntimeDigestRejects(t *testing.T) {
	v := loadTrusteeVector(t)
	c := verifyTrusteeVector(t, v)

	otherDigest := bytes.Clone(v.digest)
	otherDigest[0] ^= 1

	tests := []struct {
		name       string
		evidence   []byte
		reportType uint32
		digest     []byte
		wantKind   error
		wantField  string
	}{
		{
			name:       "user data byte flipped",
			evidence:   withHCLReport(t, v.evidence, withUserData(t, func(s string) string { return flipHexDigit(s, 10) })),
			reportType: ReportTypeSNP, digest: v.digest,
			wantKind: attest.ErrBinding, wantField: "user-data",
		},
		{
			name:       "user data tail not zero",
			evidence:   withHCLReport(t, v.evidence, withUserData(t, func(s string) string { return flipHexDigit(s, len(s)-1) })),
			reportType: ReportTypeSNP, digest: v.digest,
			wantKind: attest.ErrBinding, wantField: "user-data",
		},
		{
			name:       "user data too short",
			evidence:   withHCLReport(t, v.evidence, withUserData(t, func(s string) string { return s[:len(s)-2] + `  ` })),
			reportType: ReportTypeSNP, digest: v.digest,
			wantKind: attest.ErrMalformed, wantField: "user-data",
		},
		{
			name: "extraData byte flipped",
			evidence: withQuoteMessage(t, v.evidence, func(msg []byte) []byte {
				i := bytes.Index(msg, v.digest)
				if i < 0 {
					t.Fatal("the quote message does not contain the digest")
				}
				msg[i+5] ^= 0x80
				return msg
			}),
			reportType: ReportTypeSNP, digest: v.digest,
			wantKind: attest.ErrBinding, wantField: "extraData",
		},
		{
			name:     "other session digest",
			evidence: v.evidence, reportType: ReportTypeSNP, digest: otherDigest,
			wantKind: attest.ErrBinding, wantField: "extraData",
		},
		{
			name:     "digest zero-padded",
			evidence: v.evidence, reportType: ReportTypeSNP, digest: append(bytes.Clone(v.digest), make([]byte, 16)...),
			wantKind: attest.ErrBinding, wantField: "extraData",
		},
		{
			name:     "session declared TDX",
			evidence: v.evidence, reportType: ReportTypeTDX, digest: v.digest,
			wantKind: attest.ErrBinding, wantField: "report_type",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRuntimeDigest(c, tc.evidence, tc.reportType, tc.digest)
			if !errors.Is(err, tc.wantKind) {
				t.Fatalf("error = %v, want kind %v", err, tc.wantKind)
			}
			var ae *attest.Error
			if !errors.As(err, &ae) || !strings.Contains(ae.Field, tc.wantField) {
				t.Errorf("error = %v, want field containing %q", err, tc.wantField)
			}
		})
	}
}

func TestCheckRuntimeDigestHardwareReportData(t *testing.T) {
	v := loadTrusteeVector(t)
	c := verifyTrusteeVector(t, v)
	c.ReportData = bytes.Clone(c.ReportData)
	c.ReportData[31] ^= 1
	err := CheckRuntimeDigest(c, v.evidence, ReportTypeSNP, v.digest)
	if !errors.Is(err, attest.ErrBinding) || !strings.Contains(err.Error(), "report data") {
		t.Fatalf("error = %v, want a report data binding error", err)
	}
}

// TestVerifyTrusteeVectorUserDataEdited checks that Verify itself rejects
// edited runtime data, because the hardware report data no longer binds it.
func TestVerifyTrusteeVectorUserDataEdited(t *testing.T) {
	v := loadTrusteeVector(t)
	data := withHCLReport(t, v.evidence, withUserData(t, func(s string) string { return flipHexDigit(s, 10) }))
	_, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{At: trusteeVectorTime})
	if !errors.Is(err, attest.ErrBinding) {
		t.Fatalf("error = %v, want a binding error", err)
	}
}

func TestCheckRuntimeDigestPrefixes(t *testing.T) {
	v := loadTrusteeVector(t)
	c := verifyTrusteeVector(t, v)
	// A prefix that cuts only the trailing newline is still the whole
	// JSON object.
	evidence := bytes.TrimRight(v.evidence, "\n")
	for n := range len(evidence) {
		if err := CheckRuntimeDigest(c, evidence[:n], ReportTypeSNP, v.digest); err == nil {
			t.Fatalf("the first %d bytes of the evidence are accepted", n)
		}
	}
}
