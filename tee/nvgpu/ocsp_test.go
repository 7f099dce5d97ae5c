package nvgpu

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// signOCSP returns an OCSP response about cert, issued by issuer, signed
// with key. responder, when set, is the certificate the response carries
// as its signer's. The CertID uses SHA-384 unless tmpl names another hash.
func signOCSP(t testing.TB, cert, issuer, responder *x509.Certificate, key crypto.Signer, tmpl ocsp.Response) []byte {
	t.Helper()
	tmpl.SerialNumber = cert.SerialNumber
	tmpl.Certificate = responder
	if tmpl.IssuerHash == 0 {
		tmpl.IssuerHash = crypto.SHA384
	}
	named := responder
	if named == nil {
		named = issuer
	}
	der, err := ocsp.CreateResponse(issuer, named, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// goodStatus is a good status current at testTime.
var goodStatus = ocsp.Response{Status: ocsp.Good, ThisUpdate: testTime.Add(-time.Hour), NextUpdate: testTime.Add(time.Hour)}

// goodBetween is a good status valid from testTime+thisUpdate to
// testTime+nextUpdate, or with no nextUpdate when noNext is set.
func goodBetween(thisUpdate, nextUpdate time.Duration, noNext bool) ocsp.Response {
	r := ocsp.Response{Status: ocsp.Good, ThisUpdate: testTime.Add(thisUpdate), NextUpdate: testTime.Add(nextUpdate)}
	if noNext {
		r.NextUpdate = time.Time{}
	}
	return r
}

// statusWith returns goodStatus changed by edit.
func statusWith(edit func(*ocsp.Response)) ocsp.Response {
	r := goodStatus
	edit(&r)
	return r
}

// newResponder issues a responder certificate under issuer with the given
// extended key usages, valid from notBefore to notAfter.
func newResponder(t testing.TB, issuer *x509.Certificate, issuerKey *ecdsa.PrivateKey, eku []x509.ExtKeyUsage, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(40), Subject: pkix.Name{CommonName: "Test OCSP Responder"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku,
	}
	return testcert.Issue(t, tmpl, issuer, &key.PublicKey, issuerKey), key
}

// ocspCase is one verification with OCSP collateral and its expected
// outcome.
type ocspCase struct {
	name  string
	files map[string][]byte
	// result is the expected ocsp check, and kind is the expected error
	// kind, nil for none.
	result attest.CheckResult
	kind   error
	// detail lists text that the check's detail must contain.
	detail []string
}

// run verifies the generated report of g with the files as collateral and
// checks the ocsp check, the error and the detail.
func (c ocspCase) run(t *testing.T, g *testGPU, s *rimSigner) *attest.Claims {
	t.Helper()
	claims, err := verifyHex(t, g.build(t, g.parts(testNonce(7))), rimOptions(t, g, s, c.files))
	switch {
	case c.kind == nil && err != nil:
		t.Fatalf("verification failed: %v", err)
	case c.kind != nil && !errors.Is(err, c.kind):
		t.Fatalf("error %v, expected kind %v", err, c.kind)
	}
	ch := checkOf(t, claims, ocspCheck)
	if ch.Result != c.result {
		t.Fatalf("ocsp check %+v, expected %s", ch, c.result)
	}
	if ch.Required {
		t.Errorf("ocsp check %+v is required; it never is", ch)
	}
	for _, want := range c.detail {
		if !strings.Contains(ch.Detail, want) {
			t.Errorf("ocsp detail %q does not contain %q", ch.Detail, want)
		}
	}
	if err != nil && err.Error() != ch.Detail {
		t.Errorf("error %q differs from the check detail %q", err, ch.Detail)
	}
	return claims
}

func TestOCSPDeviceChain(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	other := newTestGPU(t, testFWID(0xf2), nil)
	interGood := signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodStatus)

	delegate, delegateKey := newResponder(t, g.root, g.rootKey, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, testTime.Add(-time.Hour), testTime.Add(time.Hour))
	noEKU, noEKUKey := newResponder(t, g.root, g.rootKey, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, testTime.Add(-time.Hour), testTime.Add(time.Hour))
	expired, expiredKey := newResponder(t, g.root, g.rootKey, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, testTime.Add(-2*time.Hour), testTime.Add(-time.Minute))
	foreign, foreignKey := newResponder(t, other.root, other.rootKey, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, testTime.Add(-time.Hour), testTime.Add(time.Hour))

	unrelatedKey := testcert.ECDSAKey(t, elliptic.P384())
	unrelated := testcert.Issue(t, testcert.CA(99, "Test Unrelated CA", testTime.Add(-time.Hour), testTime.Add(time.Hour), x509.KeyUsageCertSign), g.root, &unrelatedKey.PublicKey, g.rootKey)

	tampered := append([]byte{}, interGood...)
	tampered[len(tampered)-1] ^= 0x01

	revoked := statusWith(func(r *ocsp.Response) {
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, testTime.Add(-2*time.Hour), ocsp.KeyCompromise
	})
	hold := statusWith(func(r *ocsp.Response) {
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, testTime.Add(-3*time.Hour), ocsp.CertificateHold
		r.ThisUpdate = testTime.Add(-2 * time.Hour)
	})
	responderPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: delegate.Raw})

	cases := []ocspCase{
		{name: "good", files: map[string][]byte{"inter.ocsp": interGood}, result: attest.CheckPassed,
			detail: []string{`GPU intermediate CA "Test GH100 Identity"`, "device leaf certificate needs none"}},
		{name: "PEM response", files: map[string][]byte{"inter.pem": pem.EncodeToMemory(&pem.Block{Type: "OCSP RESPONSE", Bytes: interGood})},
			result: attest.CheckPassed},
		{name: "SHA-1 CertID", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey,
			statusWith(func(r *ocsp.Response) { r.IssuerHash = crypto.SHA1 }))}, result: attest.CheckPassed},
		{name: "no response", result: attest.CheckNotChecked,
			detail: []string{`no OCSP response for the GPU intermediate CA "CN=Test GH100 Identity,O=Cloister test" (serial 2)`, "--collateral nvidia-gpu=FILE", "--online"}},
		{name: "revoked", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, revoked)},
			result: attest.CheckFailed, kind: attest.ErrRevoked,
			detail: []string{"CN=Test GH100 Identity", "(serial 2)", "revoked since 2025-06-01T10:00:00Z", "reason keyCompromise", "inter.ocsp", "do not accept"}},
		{name: "certificate hold", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, hold)},
			result: attest.CheckFailed, kind: attest.ErrRevoked, detail: []string{"reason certificateHold", "suspended"}},
		{name: "hold lifted by newer good", files: map[string][]byte{
			"hold.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, hold), "good.ocsp": interGood}, result: attest.CheckPassed},
		{name: "revocation not lifted by newer good", files: map[string][]byte{
			"revoked.ocsp":    signOCSP(t, g.intermediate, g.root, nil, g.rootKey, revoked),
			"newer-good.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodBetween(-30*time.Minute, time.Hour, false))},
			result: attest.CheckFailed, kind: attest.ErrRevoked, detail: []string{"reason keyCompromise", "revoked.ocsp"}},
		{name: "expired revocation still counts", files: map[string][]byte{
			"revoked.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, statusWith(func(r *ocsp.Response) {
				r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, testTime.Add(-4*time.Hour), ocsp.KeyCompromise
				r.ThisUpdate, r.NextUpdate = testTime.Add(-3*time.Hour), testTime.Add(-2*time.Hour)
			})),
			"good.ocsp": interGood},
			result: attest.CheckFailed, kind: attest.ErrRevoked, detail: []string{"reason keyCompromise"}},
		{name: "newer revocation wins", files: map[string][]byte{
			"old-good.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodBetween(-2*time.Hour, time.Hour, false)),
			"revoked.ocsp":  signOCSP(t, g.intermediate, g.root, nil, g.rootKey, revoked)},
			result: attest.CheckFailed, kind: attest.ErrRevoked},
		{name: "unknown", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey,
			statusWith(func(r *ocsp.Response) { r.Status = ocsp.Unknown }))},
			result: attest.CheckFailed, kind: attest.ErrChain, detail: []string{"status unknown", "CN=Test GH100 Identity"}},
		{name: "expired nextUpdate", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey,
			goodBetween(-3*time.Hour, -time.Hour, false))},
			result: attest.CheckFailed, kind: attest.ErrCollateralExpired, detail: []string{"expired: nextUpdate 2025-06-01T11:00:00Z", "--at"}},
		{name: "stale and current", files: map[string][]byte{
			"old.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey,
				goodBetween(-3*time.Hour, -time.Hour, false)),
			"new.ocsp": interGood}, result: attest.CheckPassed},
		{name: "thisUpdate within clock skew", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey,
			goodBetween(time.Minute, time.Hour, false))}, result: attest.CheckPassed},
		{name: "thisUpdate at clock skew", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey,
			goodBetween(ocspClockSkew, time.Hour, false))}, result: attest.CheckPassed},
		{name: "no nextUpdate, recent", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey,
			goodBetween(-time.Hour, 0, true))}, result: attest.CheckPassed},
		{name: "no nextUpdate, old", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey,
			goodBetween(-13*time.Hour, 0, true))},
			result: attest.CheckFailed, kind: attest.ErrCollateralExpired, detail: []string{"no nextUpdate", "12h0m0s"}},
		{name: "wrong signer", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, other.rootKey, goodStatus)},
			result: attest.CheckFailed, kind: attest.ErrSignature, detail: []string{"signature", "Test Device Identity CA"}},
		{name: "wrong signer with its certificate", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, other.root, other.rootKey, goodStatus)},
			result: attest.CheckFailed, kind: attest.ErrSignature, detail: []string{"was not issued by"}},
		{name: "tampered signature", files: map[string][]byte{"inter.ocsp": tampered},
			result: attest.CheckFailed, kind: attest.ErrSignature},
		{name: "delegated responder", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, delegate, delegateKey, goodStatus)},
			result: attest.CheckPassed},
		{name: "delegated responder among the collateral", files: map[string][]byte{
			"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, delegateKey, goodStatus), "responder.pem": responderPEM},
			result: attest.CheckPassed},
		{name: "delegated responder missing", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, delegateKey, goodStatus)},
			result: attest.CheckFailed, kind: attest.ErrSignature},
		{name: "responder without OCSPSigning", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, noEKU, noEKUKey, goodStatus)},
			result: attest.CheckFailed, kind: attest.ErrSignature, detail: []string{"id-kp-OCSPSigning"}},
		{name: "expired responder", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, expired, expiredKey, goodStatus)},
			result: attest.CheckFailed, kind: attest.ErrSignature, detail: []string{"valid at the verification time 2025-06-01T12:00:00Z", "which excludes the time 2025-06-01T12:00:00Z"}},
		{name: "responder of another issuer", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, foreign, foreignKey, goodStatus)},
			result: attest.CheckFailed, kind: attest.ErrSignature, detail: []string{"was not issued by"}},
		{name: "CertID of another certificate", files: map[string][]byte{"unrelated.ocsp": signOCSP(t, unrelated, g.root, nil, g.rootKey, goodStatus)},
			result: attest.CheckNotChecked, detail: []string{"no OCSP response for the GPU intermediate CA"}},
		{name: "CertID of another issuer", files: map[string][]byte{"other.ocsp": signOCSP(t, other.intermediate, other.root, nil, other.rootKey, goodStatus)},
			result: attest.CheckNotChecked, detail: []string{"no OCSP response for the GPU intermediate CA"}},
		{name: "leaf good, intermediate missing", files: map[string][]byte{"leaf.ocsp": signOCSP(t, g.leaf, g.intermediate, nil, g.interKey, goodStatus)},
			result: attest.CheckNotChecked, detail: []string{`good OCSP responses for the GPU device leaf "GH100 A01 GSP FMC LF"`, "no OCSP response for the GPU intermediate CA"}},
		{name: "leaf revoked", files: map[string][]byte{"inter.ocsp": interGood, "leaf.ocsp": signOCSP(t, g.leaf, g.intermediate, nil, g.interKey, revoked)},
			result: attest.CheckFailed, kind: attest.ErrRevoked, detail: []string{"GPU device leaf", "(serial 3)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, g, nil) })
	}
}

func TestOCSPUnmatchedResponseWarned(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	other := newTestGPU(t, testFWID(0xf2), nil)
	c := ocspCase{files: map[string][]byte{
		"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodStatus),
		"other.ocsp": signOCSP(t, other.intermediate, other.root, nil, other.rootKey, goodStatus),
	}, result: attest.CheckPassed}
	claims := c.run(t, g, nil)
	warned := false
	for _, w := range claims.Warnings {
		warned = warned || strings.Contains(w, "OCSP response other.ocsp is about no certificate")
	}
	if !warned {
		t.Errorf("warnings %q do not name the unmatched response other.ocsp", claims.Warnings)
	}
}

func TestOCSPClaimsRecordResponses(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	c := ocspCase{files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodStatus)}, result: attest.CheckPassed}
	claims := c.run(t, g, nil)

	statuses, _ := claims.Attributes["ocsp"].([]map[string]any)
	if len(statuses) != 1 {
		t.Fatalf("Attributes[ocsp] = %v, expected one status", claims.Attributes["ocsp"])
	}
	if statuses[0]["status"] != "good" || statuses[0]["serial"] != "2" || statuses[0]["source"] != "inter.ocsp" {
		t.Errorf("status %v, expected good for serial 2 from inter.ocsp", statuses[0])
	}
	if statuses[0]["valid_until"] != "2025-06-01T13:00:00Z" {
		t.Errorf("valid_until %v, expected the nextUpdate 2025-06-01T13:00:00Z", statuses[0]["valid_until"])
	}
	var refs []attest.CollateralRef
	for _, ref := range claims.Collateral {
		if ref.Kind == "ocsp" {
			refs = append(refs, ref)
		}
	}
	if len(refs) != 1 || !refs[0].NextUpdate.Equal(testTime.Add(time.Hour)) {
		t.Errorf("OCSP collateral %+v, expected one response valid until %s", refs, testTime.Add(time.Hour))
	}
}

func TestOCSPRIMChains(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	base := map[string][]byte{
		"driver.swidtag": s.sign(t, driver.xml(), true),
		"vbios.swidtag":  s.sign(t, vbios.xml(), true),
		"gpu-inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodStatus),
	}
	signerGood := signOCSP(t, s.leaf, s.intermediate, nil, s.intermediateKey, goodStatus)
	interGood := signOCSP(t, s.intermediate, s.root, nil, s.rootKey, goodStatus)
	with := func(extra map[string][]byte) map[string][]byte {
		out := map[string][]byte{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	revoked := statusWith(func(r *ocsp.Response) {
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, testTime.Add(-2*time.Hour), ocsp.Superseded
	})

	cases := []ocspCase{
		{name: "device chain only", files: base, result: attest.CheckNotChecked,
			detail: []string{`good OCSP responses for the GPU intermediate CA`, `driver RIM signer "CN=Test RIM Signer" (serial d)`, "driver RIM intermediate CA"}},
		{name: "every chain good", files: with(map[string][]byte{"signer.ocsp": signerGood, "rim-inter.ocsp": interGood}), result: attest.CheckPassed,
			detail: []string{"driver RIM signer", "driver RIM intermediate CA", "GPU intermediate CA"}},
		{name: "RIM signer revoked", files: with(map[string][]byte{"signer.ocsp": signOCSP(t, s.leaf, s.intermediate, nil, s.intermediateKey, revoked), "rim-inter.ocsp": interGood}),
			result: attest.CheckFailed, kind: attest.ErrRevoked, detail: []string{"driver RIM signer", "reason superseded"}},
		{name: "RIM intermediate expired response", files: with(map[string][]byte{"signer.ocsp": signerGood, "rim-inter.ocsp": signOCSP(t, s.intermediate, s.root, nil, s.rootKey,
			goodBetween(-3*time.Hour, -time.Hour, false))}),
			result: attest.CheckFailed, kind: attest.ErrCollateralExpired, detail: []string{"driver RIM intermediate CA"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims := c.run(t, g, s)
			if ch := checkOf(t, claims, rimCheck); ch.Result != attest.CheckPassed {
				t.Errorf("rim check %+v, expected passed", ch)
			}
		})
	}
}

func TestOCSPNotCheckedWhenRIMFails(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	s := newRIMSigner(t, testTime.Add(time.Hour))
	driver, vbios := matchingRIMs()
	driver.measurements[0] = golden(0, bytesOf(0xee, 48))
	files := map[string][]byte{
		"driver.swidtag": s.sign(t, driver.xml(), true),
		"vbios.swidtag":  s.sign(t, vbios.xml(), true),
		"gpu-inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodStatus),
	}
	claims, err := verifyHex(t, g.build(t, g.parts(testNonce(7))), rimOptions(t, g, s, files))
	if err == nil {
		t.Fatal("a RIM mismatch verified")
	}
	if ch := checkOf(t, claims, ocspCheck); ch.Result != attest.CheckNotChecked || !strings.Contains(ch.Detail, "RIM check failed") {
		t.Errorf("ocsp check %+v, expected not checked because the RIM check failed", ch)
	}
}

// Messages name a file by its base name, a fetched response by its
// responder's whole URL, and an item without a source by its digest.
func TestItemName(t *testing.T) {
	tests := []struct {
		item *collateral.Item
		want string
	}{
		{&collateral.Item{Source: "/etc/cloister/gpu/driver.swidtag"}, "driver.swidtag"},
		{&collateral.Item{Source: "http://127.0.0.1:18099/ocsp", Fetched: true}, "http://127.0.0.1:18099/ocsp"},
		{&collateral.Item{SHA256: [32]byte{0xab, 0xcd}}, "sha256:abcd000000000000"},
	}
	for _, tt := range tests {
		if got := itemName(tt.item); got != tt.want {
			t.Errorf("itemName(%q) = %q, want %q", tt.item.Source, got, tt.want)
		}
	}
}

// A response may carry several SingleResponses. The one whose CertID names
// the certificate with its issuer decides, wherever it is in the list, and
// never an entry about another issuer's certificate with the same serial
// number, which golang.org/x/crypto/ocsp would read.
func TestOCSPSeveralSingleResponses(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	// other's intermediate CA has serial 2 too, under another root.
	other := newTestGPU(t, testFWID(0xf2), nil)
	revoked := statusWith(func(r *ocsp.Response) {
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, testTime.Add(-2*time.Hour), ocsp.KeyCompromise
	})
	interGood := signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodStatus)
	interGoodSHA1 := signOCSP(t, g.intermediate, g.root, nil, g.rootKey, statusWith(func(r *ocsp.Response) { r.IssuerHash = crypto.SHA1 }))
	interRevoked := signOCSP(t, g.intermediate, g.root, nil, g.rootKey, revoked)
	otherGood := signOCSP(t, other.intermediate, other.root, nil, other.rootKey, goodStatus)
	otherRevoked := signOCSP(t, other.intermediate, other.root, nil, other.rootKey, revoked)
	rootGood := signOCSP(t, g.root, g.root, nil, g.rootKey, goodStatus)
	joined := func(parts ...[]byte) map[string][]byte {
		return map[string][]byte{"joined.ocsp": testcert.OCSPJoin(t, g.rootKey, parts...)}
	}

	cases := []ocspCase{
		{name: "second of two", files: joined(otherRevoked, interGood), result: attest.CheckPassed},
		{name: "last of three", files: joined(rootGood, otherRevoked, interGood), result: attest.CheckPassed},
		{name: "first of three", files: joined(interGood, otherRevoked, rootGood), result: attest.CheckPassed},
		{name: "revoked after another issuer's good", files: joined(otherGood, interRevoked),
			result: attest.CheckFailed, kind: attest.ErrRevoked, detail: []string{"reason keyCompromise", "joined.ocsp"}},
		{name: "revoked in the middle", files: joined(rootGood, interRevoked, otherGood),
			result: attest.CheckFailed, kind: attest.ErrRevoked},
		{name: "no matching entry", files: joined(otherGood, rootGood),
			result: attest.CheckNotChecked, detail: []string{"no OCSP response for the GPU intermediate CA"}},
		{name: "same status with two hashes", files: joined(interGood, interGoodSHA1), result: attest.CheckPassed},
		{name: "conflicting statuses", files: joined(interGood, otherGood, interRevoked),
			result: attest.CheckFailed, kind: attest.ErrMalformed,
			detail: []string{"OCSP response joined.ocsp", "cannot be used", "is ambiguous", "SingleResponses 0 (good", "and 2 (revoked since 2025-06-01T10:00:00Z, reason code 1"}},
		{name: "conflicting periods", files: joined(interGood, signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodBetween(-time.Hour, 2*time.Hour, false))),
			result: attest.CheckFailed, kind: attest.ErrMalformed, detail: []string{"is ambiguous"}},
		{name: "signed by another issuer", files: map[string][]byte{"joined.ocsp": testcert.OCSPJoin(t, other.rootKey, otherGood, interGood)},
			result: attest.CheckFailed, kind: attest.ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, g, nil) })
	}
}

// A critical single extension fails the check when it is in the
// SingleResponse about the certificate. In an entry about another
// certificate it does not matter, except in one with the same serial number
// before the certificate's own, which golang.org/x/crypto/ocsp reads and
// rejects.
func TestOCSPCriticalSingleExtension(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	other := newTestGPU(t, testFWID(0xf2), nil)
	critical := statusWith(func(r *ocsp.Response) {
		r.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}
	})
	interGood := signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodStatus)
	joined := func(parts ...[]byte) map[string][]byte {
		return map[string][]byte{"joined.ocsp": testcert.OCSPJoin(t, g.rootKey, parts...)}
	}

	cases := []ocspCase{
		{name: "about the certificate", files: map[string][]byte{"inter.ocsp": signOCSP(t, g.intermediate, g.root, nil, g.rootKey, critical)},
			result: attest.CheckFailed, kind: attest.ErrMalformed, detail: []string{"cannot be used", "unsupported critical extension 1.2.3.4"}},
		{name: "about another serial", files: joined(signOCSP(t, g.root, g.root, nil, g.rootKey, critical), interGood), result: attest.CheckPassed},
		{name: "about the same serial of another issuer", files: joined(signOCSP(t, other.intermediate, other.root, nil, other.rootKey, critical), interGood),
			result: attest.CheckFailed, kind: attest.ErrMalformed, detail: []string{"unsupported critical extension"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, g, nil) })
	}
}
