package azurevtpm

import (
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// buildHCL encodes an HCL report around runtime data.
func buildHCL(reportType, hashType uint32, runtime []byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, variableDataOffset, variableDataOffset+len(runtime)+64)
	copy(b, "HCLA")
	le.PutUint32(b[4:], 1)
	le.PutUint32(b[8:], uint32(variableDataOffset+len(runtime)))
	le.PutUint32(b[12:], 2)
	req := b[requestHeaderOffset:]
	le.PutUint32(req[0:], uint32(requestHeaderSize+len(runtime)))
	le.PutUint32(req[4:], 1)
	le.PutUint32(req[8:], reportType)
	le.PutUint32(req[12:], hashType)
	le.PutUint32(req[16:], uint32(len(runtime)))
	b = append(b, runtime...)
	return append(b, make([]byte, 64)...) // zero padding, as in real reports
}

func TestParseHCLReport(t *testing.T) {
	runtime := []byte(`{"keys":[]}`)
	valid := buildHCL(ReportTypeSNP, 1, runtime)

	r, err := ParseHCLReport(valid)
	if err != nil {
		t.Fatalf("valid report: %v", err)
	}
	if string(r.VariableData) != string(runtime) {
		t.Errorf("variable data = %q, want %q", r.VariableData, runtime)
	}
	if r.Hash != crypto.SHA256 || len(r.HardwareReport) != snpReportSize {
		t.Errorf("hash %v, hardware report %d bytes; want SHA-256 and %d bytes", r.Hash, len(r.HardwareReport), snpReportSize)
	}

	tests := []struct {
		name     string
		data     []byte
		wantKind error
		wantText string
	}{
		{"empty", nil, attest.ErrMalformed, "shorter"},
		{"header only", valid[:hclHeaderSize], attest.ErrMalformed, "shorter"},
		{"wrong signature", append([]byte("HCLB"), valid[4:]...), attest.ErrMalformed, "HCLA"},
		{"runtime data cut", valid[:variableDataOffset+3], attest.ErrMalformed, "do not fit"},
		{"TDX with SHA-384", buildHCL(ReportTypeTDX, 2, runtime), nil, ""},
		{"unknown report type", buildHCL(3, 1, runtime), attest.ErrUnsupported, "report type 3"},
		{"unknown hash type", buildHCL(ReportTypeSNP, 9, runtime), attest.ErrUnsupported, "hash type 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHCLReport(tt.data)
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("ParseHCLReport: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("error = %v, want kind %v", err, tt.wantKind)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func TestParseHCLReportDataSizeMismatch(t *testing.T) {
	b := buildHCL(ReportTypeSNP, 1, []byte(`{}`))
	binary.LittleEndian.PutUint32(b[requestHeaderOffset:], 99)
	if _, err := ParseHCLReport(b); !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "data_size") {
		t.Fatalf("error = %v, want a malformed data_size", err)
	}
}

func TestRuntimeDataAK(t *testing.T) {
	tests := []struct {
		name     string
		json     string
		wantText string
	}{
		{"no keys", `{"keys":[]}`, "no key with kid HCLAkPub"},
		{"only the EK", `{"keys":[{"kid":"HCLEkPub","kty":"RSA","e":"AQAB","n":"sXch"}]}`, "no key with kid HCLAkPub"},
		{"invalid JWK", `{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB"}]}`, "not a valid JWK"},
		{"not JSON", `keys`, "not the runtime data JSON"},
		// encoding/json keeps the last of repeated members and serde_json,
		// which Trustee uses, rejects them, so the two would read
		// different keys.
		{"repeated keys member", `{"keys":[],"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"sXch"}]}`, `repeats the member "keys"`},
		{"repeated member in a key", `{"keys":[{"kid":"HCLEkPub","kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"sXch"}]}`, `repeats the member "kid"`},
		{"two AKs", `{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"sXch"},{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"sXci"}]}`, "2 keys with kid HCLAkPub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd, err := ParseRuntimeData([]byte(tt.json))
			if err == nil {
				_, err = rd.AK()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantText)
			}
		})
	}
}

func TestCheckReportData(t *testing.T) {
	runtime := []byte(`{"keys":[]}`)
	hcl, err := ParseHCLReport(buildHCL(ReportTypeSNP, 1, runtime))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(runtime)
	bound := append(sum[:], make([]byte, 32)...)

	c := &attest.Claims{}
	if err := checkReportData(c, hcl, &attest.Claims{ReportData: bound}); err != nil {
		t.Fatalf("bound report data: %v", err)
	}
	for _, rd := range [][]byte{nil, sum[:16], make([]byte, 64)} {
		err := checkReportData(&attest.Claims{}, hcl, &attest.Claims{ReportData: rd})
		if !errors.Is(err, attest.ErrBinding) || !strings.Contains(err.Error(), "report data") {
			t.Errorf("report data %x: error = %v, want a report data binding error", rd, err)
		}
	}
}

func TestParseEvidenceEncodings(t *testing.T) {
	tests := []struct {
		name     string
		json     string
		wantText string
	}{
		{"not JSON", `[`, "not Azure vTPM evidence JSON"},
		{"no quote", `{"version":1,"hcl_report":"SENMQQ"}`, "tpm_quote: missing"},
		{"no report", `{"version":1,"tpm_quote":{"message":"00","signature":"00","pcrs":["00"]}}`, "report: missing"},
		{"future version", `{"version":7}`, "version 7"},
		{"byte out of range", `{"report":[300],"quote":{}}`, "not a byte value"},
		{"quote not hex", `{"version":1,"hcl_report":"SENMQQ","tpm_quote":{"message":"zz","signature":"00","pcrs":["00"]}}`, "not hexadecimal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEvidence([]byte(tt.json))
			if !errors.Is(err, attest.ErrMalformed) && !errors.Is(err, attest.ErrUnsupported) {
				t.Fatalf("error = %v, want a malformed or unsupported error", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}
