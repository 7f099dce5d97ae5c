package dcap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// fixture is an emulated platform whose collateral a test can replace.
type fixture struct {
	e       *Emulator
	files   map[string][]byte
	anchors *collateral.Set
	now     time.Time
}

func newFixture(t *testing.T, tee string) *fixture {
	t.Helper()
	e, _, anchors := emulated(t, EmulatorOptions{TEE: tee})
	now := time.Now()
	files, err := e.CollateralFiles(now)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{e: e, files: files, anchors: anchors, now: now}
}

func (f *fixture) set() *collateral.Set {
	s := &collateral.Set{}
	for name, data := range f.files {
		s.AddBytes(name, data)
	}
	return s
}

// verify verifies a fresh quote against the fixture's current collateral.
func (f *fixture) verify(t *testing.T) (*attest.Claims, error) {
	t.Helper()
	ev, err := f.e.Attest(context.Background(), []byte("nonce"))
	if err != nil {
		t.Fatal(err)
	}
	return NewVerifier().Verify(context.Background(), *ev, attest.Options{At: f.now, Collateral: f.set(), TrustAnchors: f.anchors})
}

// resignTCBInfo replaces the TCB Info with edit applied, signed by the
// development TCB signing key.
func (f *fixture) resignTCBInfo(t *testing.T, edit func(*TCBInfo)) {
	t.Helper()
	info := f.e.tcbInfo(f.now.Add(-time.Minute).UTC(), f.now.AddDate(0, 0, 30).UTC())
	edit(info)
	doc, err := f.e.signedDocument("tcbInfo", info)
	if err != nil {
		t.Fatal(err)
	}
	f.files["tcb_info.json"] = doc
}

// tcbInfoVersion2 returns the fixture's SGX TCB Info in the version 2
// layout of Intel PCS API v3, with named component fields and no id.
func (f *fixture) tcbInfoVersion2() map[string]any {
	info := f.e.tcbInfo(f.now.Add(-time.Minute).UTC(), f.now.AddDate(0, 0, 30).UTC())
	var levels []map[string]any
	for _, l := range info.TCBLevels {
		tcb := map[string]any{"pcesvn": l.TCB.PCESVN}
		for i, comp := range l.TCB.SGXComponents {
			tcb[fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)] = comp.SVN
		}
		levels = append(levels, map[string]any{"tcb": tcb, "tcbDate": l.TCBDate, "tcbStatus": l.TCBStatus, "advisoryIDs": l.AdvisoryIDs})
	}
	return map[string]any{
		"version": 2, "issueDate": info.IssueDate, "nextUpdate": info.NextUpdate,
		"fmspc": info.FMSPC, "pceId": info.PCEID, "tcbType": 0, "tcbEvaluationDataNumber": 17, "tcbLevels": levels,
	}
}

func (f *fixture) resignQEIdentity(t *testing.T, edit func(*EnclaveIdentity)) {
	t.Helper()
	id := f.e.qeIdentity(f.now.Add(-time.Minute).UTC(), f.now.AddDate(0, 0, 30).UTC())
	edit(id)
	doc, err := f.e.signedDocument("enclaveIdentity", id)
	if err != nil {
		t.Fatal(err)
	}
	f.files["qe_identity.json"] = doc
}

func TestFMSPCCaseInsensitive(t *testing.T) {
	for _, fmspc := range []string{"00c1057e0000", "00C1057E0000", "00c1057E0000"} {
		f := newFixture(t, "tdx")
		f.resignTCBInfo(t, func(i *TCBInfo) { i.FMSPC = fmspc })
		claims, err := f.verify(t)
		if err != nil {
			t.Fatalf("FMSPC %s: %v", fmspc, err)
		}
		if claims.TCB.Status != attest.TCBUpToDate {
			t.Errorf("FMSPC %s: status %s", fmspc, claims.TCB.Status)
		}
	}
}

func TestOtherFMSPCRejected(t *testing.T) {
	f := newFixture(t, "sgx")
	f.resignTCBInfo(t, func(i *TCBInfo) { i.FMSPC = "C0806F000000" })
	claims, err := f.verify(t)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "fmspc") {
		t.Fatalf("error %v, expected one naming the FMSPC", err)
	}
	if claims == nil || claims.TCB.Status != attest.TCBNotDetermined {
		t.Errorf("status should be NotDetermined, claims %v", claims)
	}
}

func TestExpiredTCBInfo(t *testing.T) {
	f := newFixture(t, "sgx")
	f.resignTCBInfo(t, func(i *TCBInfo) { i.NextUpdate = f.now.Add(-time.Hour) })
	_, err := f.verify(t)
	if !errors.Is(err, attest.ErrCollateralExpired) {
		t.Fatalf("error %v, expected expired collateral", err)
	}
	for _, word := range []string{"tcbInfo", "nextUpdate", "expired"} {
		if !strings.Contains(err.Error(), word) {
			t.Errorf("error %q does not name %s", err, word)
		}
	}
}

func TestTCBInfoAlteredSignature(t *testing.T) {
	f := newFixture(t, "sgx")
	doc := string(f.files["tcb_info.json"])
	f.files["tcb_info.json"] = []byte(strings.Replace(doc, `"tcbEvaluationDataNumber":17`, `"tcbEvaluationDataNumber":18`, 1))
	_, err := f.verify(t)
	if !errors.Is(err, attest.ErrSignature) {
		t.Fatalf("error %v, expected a signature error", err)
	}
}

func TestRevokedPCK(t *testing.T) {
	f := newFixture(t, "sgx")
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(2), ThisUpdate: f.now.Add(-time.Hour), NextUpdate: f.now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: f.e.pck.SerialNumber, RevocationTime: f.now.Add(-time.Hour)}},
	}, f.e.pckCA, f.e.pckCAKey)
	if err != nil {
		t.Fatal(err)
	}
	f.files["pck_crl.der"] = crl
	_, err = f.verify(t)
	if !errors.Is(err, attest.ErrRevoked) {
		t.Fatalf("error %v, expected revoked", err)
	}
}

func TestMissingCollateral(t *testing.T) {
	for _, tc := range []struct{ file, check string }{
		{"qe_identity.json", checkQEIdentity},
		{"pck_crl.der", checkPCKCRL},
		{"root_ca_crl.der", checkRootCRL},
		{"tcb_info.json", checkTCBInfo},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := newFixture(t, "tdx")
			delete(f.files, tc.file)
			claims, err := f.verify(t)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			found := false
			for _, ch := range claims.Checks {
				if ch.Name == tc.check {
					found = ch.Result == attest.CheckNotChecked && ch.Required && strings.Contains(ch.Detail, "missing")
				}
			}
			if !found {
				t.Errorf("check %s not recorded as a required check that did not run: %+v", tc.check, claims.Checks)
			}
			d := appraise.Appraise(claims, appraise.Options{AllowEmulated: true})
			if d.Accepted || !strings.Contains(d.Err().Error(), "missing") {
				t.Errorf("default appraisal: %v, expected a rejection naming what is missing", d.Err())
			}
			if tc.file == "tcb_info.json" && claims.TCB.Status != attest.TCBNotDetermined {
				t.Errorf("status %s without TCB Info, expected NotDetermined", claims.TCB.Status)
			}
		})
	}
}

func TestQEIdentityMismatch(t *testing.T) {
	edits := map[string]func(*EnclaveIdentity){
		"mrsigner":   func(id *EnclaveIdentity) { id.MRSigner = strings.Repeat("AB", 32) },
		"isvprodid":  func(id *EnclaveIdentity) { id.ISVProdID = 7 },
		"attributes": func(id *EnclaveIdentity) { id.Attributes = "13000000000000000000000000000000" },
		"miscselect": func(id *EnclaveIdentity) { id.MiscSelect = "00000001" },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, "sgx")
			f.resignQEIdentity(t, edit)
			_, err := f.verify(t)
			if err == nil || !strings.Contains(err.Error(), "QE Identity") {
				t.Fatalf("error %v, expected a QE Identity mismatch", err)
			}
		})
	}
}

func TestQEOutOfDate(t *testing.T) {
	f := newFixture(t, "sgx")
	f.resignQEIdentity(t, func(id *EnclaveIdentity) {
		id.TCBLevels[0].TCB.ISVSVN = emulatedQEISVSVN + 1
		old := id.TCBLevels[0]
		old.TCB.ISVSVN = 1
		old.TCBStatus = attest.TCBOutOfDate
		old.AdvisoryIDs = []string{"INTEL-SA-00999"}
		id.TCBLevels = append(id.TCBLevels, old)
	})
	claims, err := f.verify(t)
	if err != nil {
		t.Fatal(err)
	}
	if claims.TCB.Status != attest.TCBOutOfDate {
		t.Errorf("status %s, expected OutOfDate from the QE", claims.TCB.Status)
	}
	if len(claims.TCB.AdvisoryIDs) != 1 || claims.TCB.AdvisoryIDs[0] != "INTEL-SA-00999" {
		t.Errorf("advisories %v, expected the QE level's", claims.TCB.AdvisoryIDs)
	}
}

func TestNoMatchingTCBLevel(t *testing.T) {
	f := newFixture(t, "sgx")
	f.resignTCBInfo(t, func(i *TCBInfo) { i.TCBLevels = i.TCBLevels[:1]; i.TCBLevels[0].TCB.PCESVN = emulatedPCESVN + 1 })
	claims, err := f.verify(t)
	if err != nil {
		t.Fatal(err)
	}
	if claims.TCB.Status != attest.TCBNoMatchingLevel {
		t.Errorf("status %s, expected NoMatchingTcbLevel", claims.TCB.Status)
	}
}

// TestChainLinkForgedSignature builds a PCK certificate that names the
// real PCK CA as issuer, including its key identifier, but is signed by
// another key. Verification must check the signature, not the names.
func TestChainLinkForgedSignature(t *testing.T) {
	f := newFixture(t, "sgx")
	impostorKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fakeParent := *f.e.pckCA
	fakeParent.PublicKey = &impostorKey.PublicKey
	template := *f.e.pck
	template.AuthorityKeyId = f.e.pckCA.SubjectKeyId
	for _, ext := range f.e.pck.Extensions {
		if ext.Id.Equal(OIDSGXExtensions) {
			template.ExtraExtensions = append(template.ExtraExtensions, ext)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, &template, &fakeParent, &f.e.pckKey.PublicKey, impostorKey)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if string(forged.AuthorityKeyId) != string(f.e.pckCA.SubjectKeyId) || string(forged.RawIssuer) != string(f.e.pckCA.RawSubject) {
		t.Fatal("the forged certificate does not name the real PCK CA")
	}

	f.e.pck = forged
	_, err = f.verify(t)
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, expected a chain error", err)
	}
}

func TestExpiredPCKCertificate(t *testing.T) {
	f := newFixture(t, "tdx")
	f.now = f.e.pck.NotAfter.Add(time.Hour)
	_, err := f.verify(t)
	if !errors.Is(err, attest.ErrChain) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("error %v, expected an expired certificate", err)
	}
}

func TestTamperedQuote(t *testing.T) {
	f := newFixture(t, "tdx")
	ev, err := f.e.Attest(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuote(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	qeOffset := len(q.SignedData) + 4 + 64 + 64 + 6
	for _, tc := range []struct {
		name   string
		offset int
		want   error
		words  string
	}{
		{"body", headerSize + 200, attest.ErrSignature, "quote signature"},
		{"quote signature", len(q.SignedData) + 4 + 5, attest.ErrSignature, "quote signature"},
		{"attestation key", len(q.SignedData) + 4 + 64 + 5, attest.ErrSignature, "QE report"},
		{"QE report", qeOffset + 100, attest.ErrSignature, "QE report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := append([]byte{}, ev.Data...)
			data[tc.offset] ^= 0x01
			_, err := NewVerifier().Verify(context.Background(), attest.Evidence{Data: data},
				attest.Options{At: f.now, Collateral: f.set(), TrustAnchors: f.anchors})
			if !errors.Is(err, tc.want) && !errors.Is(err, attest.ErrBinding) && !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, expected %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.words) {
				t.Errorf("error %q does not name %s", err, tc.words)
			}
		})
	}
}

// TestTCBInfoSignedByPCKKey signs TCB Info with the platform's PCK key,
// which chains to the root but must not endorse collateral.
func TestTCBInfoSignedByPCKKey(t *testing.T) {
	f := newFixture(t, "sgx")
	f.e.tcbSignerKey = f.e.pckKey
	f.resignTCBInfo(t, func(*TCBInfo) {})
	f.files["tcb_info_issuer_chain.pem"] = append(pemCert(f.e.pck), pemCert(f.e.pckCA)...)
	_, err := f.verify(t)
	if !errors.Is(err, attest.ErrChain) || !strings.Contains(err.Error(), "TCB signing") {
		t.Fatalf("error %v, expected a rejected TCB Info signer", err)
	}
}

// TestLeafAsTrustAnchor makes the PCK certificate self-signed and passes
// it as the only trust anchor. A path of the leaf alone has no verified
// link and must be rejected, without a panic.
func TestLeafAsTrustAnchor(t *testing.T) {
	f := newFixture(t, "sgx")
	template := leafTemplate("Cloister emulated Intel SGX PCK Certificate", 9, f.now.Add(-time.Hour), f.now.Add(time.Hour))
	for _, ext := range f.e.pck.Extensions {
		if ext.Id.Equal(OIDSGXExtensions) {
			template.ExtraExtensions = append(template.ExtraExtensions, ext)
		}
	}
	template.IsCA = true
	template.KeyUsage |= x509.KeyUsageCertSign
	selfSigned, err := issue(template, nil, f.e.pckKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.e.pck = selfSigned
	f.anchors = &collateral.Set{}
	f.anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: selfSigned.Raw, Certificate: selfSigned})
	if _, err := f.verify(t); !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, expected a chain error", err)
	}
}

// TestTCBInfoVersion2 verifies an SGX quote against TCB Info in the version
// 2 layout of Intel PCS API v3, with named component fields and no id.
func TestTCBInfoVersion2(t *testing.T) {
	f := newFixture(t, "sgx")
	doc, err := f.e.signedDocument("tcbInfo", f.tcbInfoVersion2())
	if err != nil {
		t.Fatal(err)
	}
	f.files["tcb_info.json"] = doc
	claims, err := f.verify(t)
	if err != nil {
		t.Fatal(err)
	}
	if claims.TCB.Status != attest.TCBUpToDate {
		t.Errorf("status %s, expected UpToDate", claims.TCB.Status)
	}

	// Version 2 TCB Info is SGX TCB Info, which a TDX quote never uses.
	tdx := newFixture(t, "tdx")
	tdx.files["tcb_info.json"] = doc
	claims, err = tdx.verify(t)
	if err != nil {
		t.Fatal(err)
	}
	if claims.TCB.Status != attest.TCBNotDetermined {
		t.Errorf("TDX status %s from SGX TCB Info, expected NotDetermined", claims.TCB.Status)
	}
}

func TestMissingTCBSigningCertificate(t *testing.T) {
	f := newFixture(t, "tdx")
	delete(f.files, "tcb_info_issuer_chain.pem")
	delete(f.files, "qe_identity_issuer_chain.pem")
	_, err := f.verify(t)
	if !errors.Is(err, attest.ErrCollateralMissing) {
		t.Fatalf("error %v, expected missing collateral", err)
	}
	if !strings.Contains(err.Error(), "TCB signing certificate") {
		t.Errorf("error %q does not name the TCB signing certificate", err)
	}
}

// TestFreshestCollateralChosen puts older collateral beside the current
// one, as a directory that collects several downloads does. Verification
// must use the current items: the expired TCB Info is ignored, and the
// newer CRL that revokes the PCK certificate wins over an older one that
// does not.
func TestFreshestCollateralChosen(t *testing.T) {
	f := newFixture(t, "sgx")
	old, err := f.e.CollateralFiles(f.now.AddDate(0, 0, -40))
	if err != nil {
		t.Fatal(err)
	}
	f.files["old_tcb_info.json"] = old["tcb_info.json"]
	f.files["old_qe_identity.json"] = old["qe_identity.json"]
	if _, err := f.verify(t); err != nil {
		t.Fatalf("with expired TCB Info and QE Identity beside current ones: %v", err)
	}

	older, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: f.now.Add(-2 * time.Hour), NextUpdate: f.now.Add(time.Hour),
	}, f.e.pckCA, f.e.pckCAKey)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(2), ThisUpdate: f.now.Add(-time.Hour), NextUpdate: f.now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: f.e.pck.SerialNumber, RevocationTime: f.now.Add(-time.Hour)}},
	}, f.e.pckCA, f.e.pckCAKey)
	if err != nil {
		t.Fatal(err)
	}
	f.files["pck_crl.der"] = older
	f.files["pck_crl_newer.der"] = newer
	if _, err := f.verify(t); !errors.Is(err, attest.ErrRevoked) {
		t.Fatalf("error %v, expected the newer CRL's revocation", err)
	}
}

// TestRelaunchAdvised verifies a quote of a TD launched before a
// TD-preserving module update: the status stays OutOfDate, and the claims,
// the warnings and the appraisal's reason advise a relaunch instead of a
// firmware update.
func TestRelaunchAdvised(t *testing.T) {
	for _, updated := range []bool{false, true} {
		t.Run(fmt.Sprintf("module updated %v", updated), func(t *testing.T) {
			e, set, anchors := emulated(t, EmulatorOptions{TEE: "tdx", QuoteVersion: 5, ModuleUpdated: updated})
			ev, err := e.Attest(context.Background(), []byte("nonce"))
			if err != nil {
				t.Fatal(err)
			}
			claims, err := NewVerifier().Verify(context.Background(), *ev, attest.Options{Collateral: set, TrustAnchors: anchors})
			if err != nil {
				t.Fatal(err)
			}
			wantStatus := attest.TCBUpToDate
			if updated {
				wantStatus = attest.TCBOutOfDate
			}
			if claims.TCB.Status != wantStatus || claims.TCB.RelaunchAdvised != updated {
				t.Fatalf("status %s, relaunch advised %v; expected %s, %v", claims.TCB.Status, claims.TCB.RelaunchAdvised, wantStatus, updated)
			}
			warned := strings.Contains(strings.Join(claims.Warnings, "\n"), "TD relaunch advised")
			if warned != updated {
				t.Errorf("warnings %q; a relaunch warning expected: %v", claims.Warnings, updated)
			}
			d := appraise.Appraise(claims, appraise.Options{AllowEmulated: true})
			if d.Accepted == updated {
				t.Fatalf("accepted %v with TCB status %s", d.Accepted, claims.TCB.Status)
			}
			if updated && !strings.Contains(d.Err().Error(), "relaunch the TD") {
				t.Errorf("rejection %q does not advise a relaunch", d.Err())
			}
		})
	}
}

// A QE Identity that does not match leaves no QE status, which must not
// read as a QE Identity never checked: the failed quote gets no relaunch
// advice.
func TestRelaunchNotAdvisedAfterQEMismatch(t *testing.T) {
	e, _, anchors := emulated(t, EmulatorOptions{TEE: "tdx", QuoteVersion: 5, ModuleUpdated: true})
	now := time.Now()
	files, err := e.CollateralFiles(now)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{e: e, files: files, anchors: anchors, now: now}
	f.resignQEIdentity(t, func(id *EnclaveIdentity) { id.MRSigner = strings.Repeat("00", 32) })

	claims, err := f.verify(t)
	if err == nil {
		t.Fatal("a quote whose QE does not match the QE Identity verified")
	}
	if claims != nil && claims.TCB.RelaunchAdvised {
		t.Errorf("relaunch advised beside the failed QE Identity check: %v", err)
	}
}
