package snp

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/uuid"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/snpabi"
	"github.com/cloister-dev/cloister/internal/testcert"
)

func TestVerifyEmulatedProducts(t *testing.T) {
	for _, tc := range []struct {
		product, key string
		components   []string
	}{
		{ProductMilan, "VCEK", []string{"bootloader", "tee", "snp", "microcode"}},
		{ProductMilan, "VLEK", []string{"bootloader", "tee", "snp", "microcode"}},
		{ProductGenoa, "VCEK", []string{"bootloader", "tee", "snp", "microcode"}},
		{ProductTurin, "VCEK", []string{"fmc", "bootloader", "tee", "snp", "microcode"}},
	} {
		t.Run(tc.product+"/"+tc.key, func(t *testing.T) {
			e := sharedEmulator(t, EmulatorOptions{Product: tc.product, SigningKey: tc.key})
			ev, err := e.Attest(context.Background(), []byte("nonce"))
			if err != nil {
				t.Fatal(err)
			}
			claims, err := attest.Verify(context.Background(), *ev, emulatedOptions(e))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims.Product != tc.product {
				t.Errorf("Product = %q, want %q", claims.Product, tc.product)
			}
			if claims.SigningKey != tc.key {
				t.Errorf("SigningKey = %q, want %q", claims.SigningKey, tc.key)
			}
			if !claims.Emulated || claims.TrustAnchor.Kind != attest.AnchorEmulatedRoot {
				t.Errorf("Emulated = %v, anchor %q; want true, emulated-root", claims.Emulated, claims.TrustAnchor.Kind)
			}
			if string(claims.ReportData[:5]) != "nonce" {
				t.Errorf("ReportData = %s, want it to start with the nonce", claims.ReportData)
			}
			var names []string
			for _, c := range claims.TCB.Components {
				names = append(names, c.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.components, ",") {
				t.Errorf("TCB components = %v, want %v", names, tc.components)
			}
			if len(claims.Chain) != 3 {
				t.Errorf("Chain has %d certificates, want 3", len(claims.Chain))
			}
		})
	}
}

func TestVerifyUsesCertificateTable(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	ev, err := e.Attest(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// No collateral: the VCEK and ASK come from Evidence.Aux alone.
	claims, err := (&Verifier{}).Verify(context.Background(), *ev, attest.Options{TrustAnchors: anchors(e)})
	if err != nil {
		t.Fatalf("Verify with the certificate table only: %v", err)
	}
	if claims.SigningKey != "VCEK" {
		t.Errorf("SigningKey = %q, want VCEK", claims.SigningKey)
	}
}

func TestVerifyRejects(t *testing.T) {
	milan := sharedEmulator(t, EmulatorOptions{})
	vlek := sharedEmulator(t, EmulatorOptions{SigningKey: "VLEK"})
	genoa := sharedEmulator(t, EmulatorOptions{Product: ProductGenoa})
	now := time.Now()

	tests := []struct {
		name     string
		report   func(t *testing.T) []byte
		opts     func(t *testing.T) attest.Options
		kind     error
		contains string
	}{
		{
			name:   "VLEK report with VCEK chain",
			report: func(t *testing.T) []byte { return signedReport(t, vlek, nil) },
			opts: func(t *testing.T) attest.Options {
				return attest.Options{Collateral: milan.Collateral(), TrustAnchors: anchors(milan)}
			},
			kind: attest.ErrCollateralMissing, contains: "only a VCEK certificate",
		},
		{
			name:   "VCEK report with VLEK chain",
			report: func(t *testing.T) []byte { return signedReport(t, milan, nil) },
			opts: func(t *testing.T) attest.Options {
				return attest.Options{Collateral: vlek.Collateral(), TrustAnchors: anchors(vlek)}
			},
			kind: attest.ErrCollateralMissing, contains: "only a VLEK certificate",
		},
		{
			name: "VLEK issued by an ASK",
			report: func(t *testing.T) []byte {
				return signedReport(t, milan, func(r *Report) { r.SignerInfo = signingKeyVLEK << 2 })
			},
			opts: func(t *testing.T) attest.Options {
				exts := vlek.leaf.Extensions // CSP_ID, no hwid
				leaf := issueLeaf(t, milan, "SEV-VLEK", kdsOnly(exts))
				set := &collateral.Set{}
				set.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: leaf.Raw, Certificate: leaf})
				set.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: milan.ask.Raw, Certificate: milan.ask})
				return attest.Options{Collateral: set, TrustAnchors: anchors(milan)}
			},
			kind: attest.ErrChain, contains: "issued by SEV-Milan",
		},
		{
			name: "REPORTED_TCB differs from VCEK",
			report: func(t *testing.T) []byte {
				return signedReport(t, milan, func(r *Report) { r.ReportedTCB++ })
			},
			opts: func(t *testing.T) attest.Options { return emulatedOptions(milan) },
			kind: attest.ErrChain, contains: "bootloader is 5 in REPORTED_TCB but 4",
		},
		{
			name: "Turin FMC differs from VCEK",
			report: func(t *testing.T) []byte {
				turin := sharedEmulator(t, EmulatorOptions{Product: ProductTurin})
				return signedReport(t, turin, func(r *Report) { r.ReportedTCB++ })
			},
			opts: func(t *testing.T) attest.Options {
				return emulatedOptions(sharedEmulator(t, EmulatorOptions{Product: ProductTurin}))
			},
			kind: attest.ErrChain, contains: "fmc is 2 in REPORTED_TCB but 1",
		},
		{
			name: "CURRENT_TCB is never compared",
			report: func(t *testing.T) []byte {
				return signedReport(t, milan, func(r *Report) { r.CurrentTCB++ })
			},
			opts: func(t *testing.T) attest.Options { return emulatedOptions(milan) },
		},
		{
			name: "CHIP_ID differs from VCEK hwid",
			report: func(t *testing.T) []byte {
				return signedReport(t, milan, func(r *Report) { r.ChipID[0] ^= 1 })
			},
			opts: func(t *testing.T) attest.Options { return emulatedOptions(milan) },
			kind: attest.ErrChain, contains: "another chip",
		},
		{
			name: "CPUID of another product",
			report: func(t *testing.T) []byte {
				return signedReport(t, milan, func(r *Report) { r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping = cpuidOf(ProductGenoa) })
			},
			opts: func(t *testing.T) attest.Options { return emulatedOptions(milan) },
			kind: attest.ErrChain, contains: "is a Genoa processor",
		},
		{
			name:   "Genoa chain for a Milan report",
			report: func(t *testing.T) []byte { return signedReport(t, milan, nil) },
			opts: func(t *testing.T) attest.Options {
				return attest.Options{Collateral: genoa.Collateral(), TrustAnchors: anchors(genoa)}
			},
			kind: attest.ErrChain, contains: "is for Genoa",
		},
		{
			name: "signature over modified body",
			report: func(t *testing.T) []byte {
				data := signedReport(t, milan, nil)
				data[0x50] ^= 1
				return data
			},
			opts: func(t *testing.T) attest.Options { return emulatedOptions(milan) },
			kind: attest.ErrSignature, contains: "report signature invalid under the VCEK",
		},
		{
			name:   "emulated root only in collateral",
			report: func(t *testing.T) []byte { return signedReport(t, milan, nil) },
			opts: func(t *testing.T) attest.Options {
				return attest.Options{Collateral: withItems(milan, []*x509.Certificate{milan.Root()}, nil)}
			},
			kind: attest.ErrChain, contains: "--trust-anchor",
		},
		{
			name:   "chain expired at verification time",
			report: func(t *testing.T) []byte { return signedReport(t, milan, nil) },
			opts: func(t *testing.T) attest.Options {
				o := emulatedOptions(milan)
				o.At = now.AddDate(11, 0, 0)
				return o
			},
			kind: attest.ErrChain, contains: "expired: notAfter",
		},
		{
			name:   "CRL past nextUpdate",
			report: func(t *testing.T) []byte { return signedReport(t, milan, nil) },
			opts: func(t *testing.T) attest.Options {
				crl := crlBy(t, milan, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
				return attest.Options{Collateral: withItems(milan, nil, []*x509.RevocationList{crl}), TrustAnchors: anchors(milan)}
			},
			kind: attest.ErrCollateralExpired, contains: "CRL expired: nextUpdate",
		},
		{
			name:   "ASK revoked by CRL",
			report: func(t *testing.T) []byte { return signedReport(t, milan, nil) },
			opts: func(t *testing.T) attest.Options {
				crl := crlBy(t, milan, now.Add(-time.Hour), now.Add(24*time.Hour), milan.ask.SerialNumber)
				return attest.Options{Collateral: withItems(milan, nil, []*x509.RevocationList{crl}), TrustAnchors: anchors(milan)}
			},
			kind: attest.ErrRevoked, contains: "is revoked",
		},
		{
			name: "unsigned report",
			report: func(t *testing.T) []byte {
				return signedReport(t, milan, func(r *Report) { r.SignerInfo = signingKeyNone << 2 })
			},
			opts: func(t *testing.T) attest.Options { return emulatedOptions(milan) },
			kind: attest.ErrSignature, contains: "unsigned",
		},
		{
			name:   "no endorsement certificate",
			report: func(t *testing.T) []byte { return signedReport(t, milan, nil) },
			opts:   func(t *testing.T) attest.Options { return attest.Options{TrustAnchors: anchors(milan)} },
			kind:   attest.ErrCollateralMissing, contains: "no VCEK certificate",
		},
		{
			name:   "root of another emulator",
			report: func(t *testing.T) []byte { return signedReport(t, milan, nil) },
			opts: func(t *testing.T) attest.Options {
				return attest.Options{Collateral: milan.Collateral(), TrustAnchors: anchors(sharedEmulator(t, EmulatorOptions{Debug: true}))}
			},
			kind: attest.ErrChain, contains: "does not verify under ARK-Milan",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify(t, tc.report(t), tc.opts(t))
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkVerifyError(t, err, tc.kind, tc.contains)
		})
	}
}

// kdsOnly returns the AMD KDS extensions of exts.
func kdsOnly(exts []pkix.Extension) []pkix.Extension {
	var out []pkix.Extension
	for _, e := range exts {
		if len(e.Id) > len(snpabi.OIDKDS) && e.Id[:len(snpabi.OIDKDS)].Equal(snpabi.OIDKDS) {
			out = append(out, e)
		}
	}
	return out
}

func TestVerifyRevocationChecks(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	now := time.Now()
	arkCRL := crlBy(t, e, now.Add(-time.Hour), now.Add(time.Hour))
	askCRL := crlSignedBy(t, e.ask, e.askKey, now.Add(-time.Hour), now.Add(time.Hour))
	tests := []struct {
		name   string
		crls   []*x509.RevocationList
		result attest.CheckResult
	}{
		{"no CRL", nil, attest.CheckNotChecked},
		{"current CRL without the ASK", []*x509.RevocationList{arkCRL}, attest.CheckPassed},
		// The ASK's CRL covers the VCEK alone, so the ASK stays unchecked.
		{"only the ASK's CRL", []*x509.RevocationList{askCRL}, attest.CheckNotChecked},
		{"CRLs of the ARK and the ASK", []*x509.RevocationList{arkCRL, askCRL}, attest.CheckPassed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := verify(t, signedReport(t, e, nil), attest.Options{Collateral: withItems(e, nil, tc.crls), TrustAnchors: anchors(e)})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got := checkResult(claims, "revocation")
			if got.Result != tc.result {
				t.Errorf("revocation check = %q, want %q", got.Result, tc.result)
			}
			if got.Required {
				t.Errorf("revocation check is required; it must not be, since AMD CRLs are rarely available offline")
			}
		})
	}
}

// checkResult returns the check named name, or the zero Check when none
// was recorded.
func checkResult(c *attest.Claims, name string) attest.Check {
	ch, _ := c.FindCheck(name)
	return ch
}

// A platform configured with MASK_CHIP_ID writes zeros to CHIP_ID and
// still signs with the VCEK, whose key binds the report to the chip.
func TestVerifyMaskedChipID(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	data := signedReport(t, e, func(r *Report) { r.ChipID = [64]byte{} })
	claims, err := verify(t, data, emulatedOptions(e))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	check := checkResult(claims, "chip-id-match")
	if check.Result != attest.CheckNotChecked {
		t.Errorf("chip-id-match = %q, want not-checked", check.Result)
	}
	if !strings.Contains(check.Detail, "MASK_CHIP_ID") {
		t.Errorf("chip-id-match detail %q does not name MASK_CHIP_ID", check.Detail)
	}

	// Without the VCEK, the error explains why KDS cannot serve it.
	_, err = verify(t, data, attest.Options{TrustAnchors: anchors(e)})
	if !errors.Is(err, attest.ErrCollateralMissing) {
		t.Fatalf("Verify without the VCEK: error %v, want collateral missing", err)
	}
	if !strings.Contains(err.Error(), "MASK_CHIP_ID") {
		t.Errorf("Verify without the VCEK: error %q does not name MASK_CHIP_ID", err)
	}
}

// MASK_CHIP_KEY means the firmware does not use the VCEK for attestation,
// so a report that sets it cannot carry a VCEK signature.
func TestVerifyMaskChipKeyWithVCEK(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	data := signedReport(t, e, func(r *Report) { r.SignerInfo |= 2 })
	_, err := verify(t, data, emulatedOptions(e))
	if !errors.Is(err, attest.ErrSignature) {
		t.Fatalf("Verify error = %v, want a signature error", err)
	}
	if !strings.Contains(err.Error(), "MASK_CHIP_KEY") {
		t.Errorf("Verify error %q does not name MASK_CHIP_KEY", err)
	}

	// A VLEK signs regardless of MASK_CHIP_KEY.
	vlek := sharedEmulator(t, EmulatorOptions{SigningKey: "VLEK"})
	data = signedReport(t, vlek, func(r *Report) { r.SignerInfo |= 2 })
	if _, err := verify(t, data, emulatedOptions(vlek)); err != nil {
		t.Errorf("Verify of a VLEK report with MASK_CHIP_KEY: %v", err)
	}
}

func TestVerifyReportVersions(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	for _, version := range []uint32{2, 3, 4, 5} {
		data := signedReport(t, e, func(r *Report) {
			r.Version = version
			if version == 2 {
				r.HasCPUID, r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping = false, 0, 0, 0
			}
			if version == 5 {
				r.HasMitigationVectors, r.LaunchMitVector, r.CurrentMitVector = true, 0x5, 0x7
			}
		})
		claims, err := verify(t, data, emulatedOptions(e))
		if err != nil {
			t.Fatalf("version %d: Verify: %v", version, err)
		}
		if got := claims.Attributes["version"]; got != version {
			t.Errorf("version %d: attribute version = %v", version, got)
		}
		_, hasVector := claims.Attributes["current_mit_vector"]
		if hasVector != (version == 5) {
			t.Errorf("version %d: current_mit_vector present = %v", version, hasVector)
		}
		wantProductCheck := attest.CheckPassed
		if version == 2 {
			wantProductCheck = attest.CheckNotChecked
		}
		if got := checkResult(claims, "product-match").Result; got != wantProductCheck {
			t.Errorf("version %d: product-match = %q, want %q", version, got, wantProductCheck)
		}
	}
}

func TestVerifyCacheKeepsWindow(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	v := &Verifier{}
	data := signedReport(t, e, nil)
	opts := emulatedOptions(e)
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts); err != nil {
			t.Fatalf("Verify %d: %v", i, err)
		}
	}
	// A cached chain must not pass outside its validity window.
	opts.At = time.Now().AddDate(20, 0, 0)
	if _, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts); !errors.Is(err, attest.ErrChain) {
		t.Errorf("Verify after notAfter with a warm cache: error %v, want ErrChain", err)
	}
	// Nor may a cached chain stand for a modified report.
	data[0x90] ^= 1
	if _, err := v.Verify(context.Background(), attest.Evidence{Data: data}, emulatedOptions(e)); !errors.Is(err, attest.ErrSignature) {
		t.Errorf("Verify of a modified report with a warm cache: error %v, want ErrSignature", err)
	}
}

func TestAppraiseEmulatedAndDebug(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		debug   bool
		ao      appraise.Options
		verdict appraise.Verdict
	}{
		{"default rejects emulated", false, appraise.Options{}, appraise.Reject},
		{"allow emulated accepts", false, appraise.Options{AllowEmulated: true}, appraise.Accept},
		{"debug rejected", true, appraise.Options{AllowEmulated: true}, appraise.Reject},
		{"debug allowed", true, appraise.Options{AllowEmulated: true, AllowDebug: true}, appraise.Accept},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := sharedEmulator(t, EmulatorOptions{Debug: tc.debug})
			ev, err := e.Attest(ctx, []byte{1, 2, 3})
			if err != nil {
				t.Fatal(err)
			}
			res := appraise.Evaluate(ctx, *ev, emulatedOptions(e), tc.ao)
			if res.Verdict != tc.verdict {
				t.Fatalf("verdict = %s (%v), want %s", res.Verdict, res.Error, tc.verdict)
			}
			if res.Claims == nil || res.Claims.Debug != tc.debug {
				t.Errorf("claims debug = %v, want %v", res.Claims != nil && res.Claims.Debug, tc.debug)
			}
		})
	}
}

func TestVerifyCertificateTableKinds(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	data := signedReport(t, e, nil)
	// The VCEK filed under the VLEK GUID.
	aux := marshalCertTable([]certTableEntry{{GUID: guidVLEK, Data: e.leaf.Raw}, {GUID: guidASK, Data: e.ask.Raw}})
	_, err := (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: data, Aux: aux}, attest.Options{TrustAnchors: anchors(e)})
	if !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "SEV-VCEK") {
		t.Errorf("Verify error = %v, want a malformed certificate table naming SEV-VCEK", err)
	}
}

// An entry under the GUID of a VCEK, VLEK, ASK or ARK must contain an
// X.509 certificate. An entry under go-sev-guest's extra platform
// information GUID may contain any bytes.
func TestVerifyCertificateTableEntryNotCertificate(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	data := signedReport(t, e, nil)
	extraGUID := uuid.MustParse(abi.ExtraPlatformInfoGUID)
	tests := []struct {
		name string
		guid uuid.UUID
		kind error
	}{
		{"garbage under the VCEK GUID", guidVCEK, attest.ErrMalformed},
		{"garbage under the ARK GUID", guidARK, attest.ErrMalformed},
		{"extra platform information", extraGUID, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aux := marshalCertTable([]certTableEntry{{GUID: tc.guid, Data: []byte("not a certificate")}, {GUID: guidASK, Data: e.ask.Raw}})
			_, err := (&Verifier{}).Verify(context.Background(), attest.Evidence{Data: data, Aux: aux}, emulatedOptions(e))
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Verify error = %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.guid.String()) {
				t.Errorf("Verify error %q does not name the GUID %s", err, tc.guid)
			}
			if !strings.Contains(err.Error(), "certificate table unmodified") {
				t.Errorf("Verify error %q does not name the fix", err)
			}
		})
	}
}

func TestVerifyCollateralRefs(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	now := time.Now()
	crl := crlBy(t, e, now.Add(-time.Hour), now.Add(time.Hour))
	claims, err := verify(t, signedReport(t, e, nil), attest.Options{Collateral: withItems(e, nil, []*x509.RevocationList{crl}), TrustAnchors: anchors(e)})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var kinds []string
	for _, r := range claims.Collateral {
		kinds = append(kinds, r.Kind+":"+r.Name)
	}
	want := "certificate:SEV-VCEK,certificate:SEV-Milan,certificate:ARK-Milan,crl:ARK-Milan"
	if got := strings.Join(kinds, ","); got != want {
		t.Errorf("collateral refs = %s, want %s", got, want)
	}
}

func TestVerifyNonce(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	data := signedReport(t, e, nil) // REPORT_DATA starts with "cloister test"
	tests := []struct {
		name  string
		nonce string
		kind  error
	}{
		{"nonce at start", "cloister", nil},
		{"whole report data prefix", "cloister test", nil},
		{"other nonce", "another nonce", attest.ErrBinding},
		{"longer than report data", strings.Repeat("x", 65), attest.ErrBinding},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := emulatedOptions(e)
			opts.Nonce = []byte(tc.nonce)
			claims, err := verify(t, data, opts)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got := checkResult(claims, "nonce").Result; got != attest.CheckPassed {
					t.Errorf("nonce check = %q, want passed", got)
				}
				return
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("Verify error = %v, want kind %v", err, tc.kind)
			}
			if !corpus.MatchesReason(err.Error(), "report data") {
				t.Errorf("Verify error %q does not name the report data", err)
			}
		})
	}
}

func TestVerifyConcurrent(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	v := &Verifier{}
	data := signedReport(t, e, nil)
	opts := emulatedOptions(e)
	errs := make(chan error, 8)
	for i := 0; i < cap(errs); i++ {
		go func() {
			_, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts)
			errs <- err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Verify: %v", err)
		}
	}
}

// Without an expected nonce, the nonce check is recorded as not checked,
// so that the claims show that freshness was not verified.
func TestVerifyRecordsMissingNonce(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	claims, err := verify(t, signedReport(t, e, nil), emulatedOptions(e))
	if err != nil {
		t.Fatal(err)
	}
	if got := checkResult(claims, "nonce").Result; got != attest.CheckNotChecked {
		t.Errorf("nonce check = %q, want not-checked", got)
	}
}

// reissuedASK issues from e's ARK a certificate for e's ASK key and
// subject, so that e's VCEK verifies under it, with the CA flag and key
// usages that edit sets.
func reissuedASK(t *testing.T, e *Emulator, edit func(tmpl *x509.Certificate)) *x509.Certificate {
	t.Helper()
	tmpl := caTemplate(e.ask.Subject.CommonName, 20, e.ask.NotBefore, e.ask.NotAfter)
	tmpl.Subject = e.ask.Subject
	edit(tmpl)
	return testcert.Issue(t, tmpl, e.ark, &e.askKey.PublicKey, e.arkKey)
}

func TestVerifyIssuerMustBeCA(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	now := time.Now()
	tests := []struct {
		name     string
		ask      func(tmpl *x509.Certificate)
		crl      bool
		kind     error
		contains string
	}{
		{"ASK as issued", func(*x509.Certificate) {}, false, nil, ""},
		{"ASK without basic constraints", func(c *x509.Certificate) { c.BasicConstraintsValid, c.IsCA = false, false }, false,
			attest.ErrChain, "not a CA"},
		{"ASK without certificate signing", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign }, false,
			attest.ErrChain, "keyCertSign"},
		{"CRL of an ASK without CRL signing", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCertSign }, true,
			attest.ErrChain, "cRLSign"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ask := reissuedASK(t, e, tc.ask)
			set := &collateral.Set{}
			set.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.leaf.Raw, Certificate: e.leaf})
			set.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: ask.Raw, Certificate: ask})
			if tc.crl {
				// crypto/x509 creates no CRL for an issuer without cRLSign,
				// so the CRL is made with a copy that has it.
				signer := *ask
				signer.KeyUsage |= x509.KeyUsageCRLSign
				crl := crlSignedBy(t, &signer, e.askKey, now.Add(-time.Hour), now.Add(time.Hour))
				set.Add(&collateral.Item{Kind: collateral.KindCRL, Raw: crl.Raw, CRL: crl})
			}
			_, err := verify(t, signedReport(t, e, nil), attest.Options{Collateral: set, TrustAnchors: anchors(e)})
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkVerifyError(t, err, tc.kind, tc.contains)
		})
	}
}

// The running firmware's ABI version (CURRENT) must reach the guest
// policy's ABI_MAJOR.ABI_MINOR. COMMITTED may be older, as it is while a
// host runs provisional firmware.
func TestVerifyPolicyABI(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	const base = 0x30000 // SMT allowed, bit 17 set
	tests := []struct {
		name                           string
		abiMajor, abiMinor             uint64
		currentMajor, currentMinor     uint8
		committedMajor, committedMinor uint8
		reject                         bool
	}{
		{name: "no minimum", currentMajor: 1, currentMinor: 55, committedMajor: 1, committedMinor: 55},
		{name: "equal", abiMajor: 1, abiMinor: 55, currentMajor: 1, currentMinor: 55, committedMajor: 1, committedMinor: 55},
		{name: "older minor", abiMajor: 1, abiMinor: 51, currentMajor: 1, currentMinor: 55, committedMajor: 1, committedMinor: 55},
		{name: "older major", abiMajor: 0, abiMinor: 255, currentMajor: 1, currentMinor: 0, committedMajor: 1, committedMinor: 0},
		{name: "committed older", abiMajor: 1, abiMinor: 55, currentMajor: 1, currentMinor: 55, committedMajor: 1, committedMinor: 51},
		{name: "newer minor", abiMajor: 1, abiMinor: 56, currentMajor: 1, currentMinor: 55, committedMajor: 1, committedMinor: 55, reject: true},
		{name: "newer major", abiMajor: 2, abiMinor: 0, currentMajor: 1, currentMinor: 55, committedMajor: 1, committedMinor: 55, reject: true},
		{name: "committed newer", abiMajor: 1, abiMinor: 56, currentMajor: 1, currentMinor: 55, committedMajor: 1, committedMinor: 57, reject: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := signedReport(t, e, func(r *Report) {
				r.Policy = base | tc.abiMajor<<8 | tc.abiMinor
				r.CurrentMajor, r.CurrentMinor = tc.currentMajor, tc.currentMinor
				r.CommittedMajor, r.CommittedMinor = tc.committedMajor, tc.committedMinor
			})
			claims, err := verify(t, data, emulatedOptions(e))
			if !tc.reject {
				if err != nil {
					t.Fatal(err)
				}
				if got := checkResult(claims, "policy-abi").Result; got != attest.CheckPassed {
					t.Errorf("policy-abi check %s, want passed", got)
				}
				return
			}
			want := fmt.Sprintf("the guest policy requires firmware ABI %d.%d or later, but the firmware that signed the report runs ABI %d.%d",
				tc.abiMajor, tc.abiMinor, tc.currentMajor, tc.currentMinor)
			checkVerifyError(t, err, attest.ErrMalformed, want)
			if claims == nil {
				t.Fatal("no claims with the rejection")
			}
			if got := checkResult(claims, "policy-abi").Result; got != attest.CheckFailed {
				t.Errorf("policy-abi check %s, want failed", got)
			}
		})
	}
}

// The verifier reports VMPL without judging it, and appraise.Options.MaxVMPL
// rejects a report from a VMPL above the maximum.
func TestAppraiseMaxVMPL(t *testing.T) {
	ctx := context.Background()
	e := sharedEmulator(t, EmulatorOptions{})
	maximum := func(v uint32) *uint32 { return &v }
	tests := []struct {
		name    string
		vmpl    uint32
		maximum *uint32
		verdict appraise.Verdict
	}{
		{"any VMPL by default", 3, nil, appraise.Accept},
		{"VMPL 0 under maximum 0", 0, maximum(0), appraise.Accept},
		{"VMPL 2 under maximum 2", 2, maximum(2), appraise.Accept},
		{"VMPL 2 above maximum 1", 2, maximum(1), appraise.Reject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := signedReport(t, e, func(r *Report) { r.VMPL = tc.vmpl })
			ev := attest.Evidence{Format: "snp", Data: data}
			res := appraise.Evaluate(ctx, ev, emulatedOptions(e), appraise.Options{AllowEmulated: true, MaxVMPL: tc.maximum})
			if res.Verdict != tc.verdict {
				t.Fatalf("verdict = %s (%v), want %s", res.Verdict, res.Error, tc.verdict)
			}
			if res.Claims == nil {
				t.Fatal("no claims")
			}
			if got := res.Claims.Attributes["vmpl"]; got != tc.vmpl {
				t.Errorf("vmpl attribute %v, want %d", got, tc.vmpl)
			}
			if tc.verdict == appraise.Reject && !strings.Contains(res.Error.Error(), fmt.Sprintf("VMPL %d, above the maximum VMPL %d", tc.vmpl, *tc.maximum)) {
				t.Errorf("error %q does not name the VMPL and the maximum", res.Error)
			}
		})
	}
}
