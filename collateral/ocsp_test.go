package collateral

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/internal/testcert"
)

// ocspPKI is a generated CA with one certificate it issued.
type ocspPKI struct {
	ca, cert *x509.Certificate
	caKey    *ecdsa.PrivateKey
}

func newOCSPPKI(t testing.TB) *ocspPKI {
	t.Helper()
	caKey, certKey := testcert.ECDSAKey(t, elliptic.P384()), testcert.ECDSAKey(t, elliptic.P256())
	ca := testcert.Issue(t, testcert.Template(1, "test CA", true, x509.KeyUsageCertSign), nil, &caKey.PublicKey, caKey)
	cert := testcert.Issue(t, testcert.Template(2, "test certificate", false, x509.KeyUsageDigitalSignature), ca, &certKey.PublicKey, caKey)
	return &ocspPKI{ca: ca, cert: cert, caKey: caKey}
}

// response returns a response about p.cert, signed by the CA, with the
// given CertID hash, valid from thisUpdate to nextUpdate.
func (p *ocspPKI) response(t testing.TB, hash crypto.Hash, thisUpdate, nextUpdate time.Time) []byte {
	t.Helper()
	der, err := ocsp.CreateResponse(p.ca, p.ca, ocsp.Response{Status: ocsp.Good, SerialNumber: p.cert.SerialNumber,
		IssuerHash: hash, ThisUpdate: thisUpdate, NextUpdate: nextUpdate}, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// responseWith returns a response about p.cert, signed by the CA, with the
// status, period and CertID hash of tmpl (SHA-384 when it names none).
func (p *ocspPKI) responseWith(t testing.TB, tmpl ocsp.Response) []byte {
	t.Helper()
	tmpl.SerialNumber = p.cert.SerialNumber
	if tmpl.IssuerHash == 0 {
		tmpl.IssuerHash = crypto.SHA384
	}
	der, err := ocsp.CreateResponse(p.ca, p.ca, tmpl, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseOCSPResponseCertID(t *testing.T) {
	p, other := newOCSPPKI(t), newOCSPPKI(t)
	thisUpdate := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		t.Run(hash.String(), func(t *testing.T) {
			singles, err := ParseOCSPResponse(p.response(t, hash, thisUpdate, thisUpdate.Add(2*time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			if len(singles) != 1 {
				t.Fatalf("%d SingleResponses, expected 1", len(singles))
			}
			s := singles[0]
			if s.CertID.Hash != hash {
				t.Errorf("CertID hash %v, expected %v", s.CertID.Hash, hash)
			}
			if !s.CertID.Matches(p.cert, p.ca) {
				t.Error("CertID does not match the certificate it is about")
			}
			if s.CertID.Matches(p.cert, other.ca) {
				t.Error("CertID matches the same serial under another issuer")
			}
			if s.CertID.Matches(p.ca, p.ca) {
				t.Error("CertID matches another serial of the same issuer")
			}
			if !s.ThisUpdate.Equal(thisUpdate) || !s.ValidUntil().Equal(thisUpdate.Add(2*time.Hour)) {
				t.Errorf("thisUpdate %s, valid until %s; expected %s and %s", s.ThisUpdate, s.ValidUntil(), thisUpdate, thisUpdate.Add(2*time.Hour))
			}
		})
	}
}

func TestOCSPValidUntilWithoutNextUpdate(t *testing.T) {
	p := newOCSPPKI(t)
	thisUpdate := time.Now().Add(-time.Hour).Truncate(time.Second)
	singles, err := ParseOCSPResponse(p.response(t, crypto.SHA384, thisUpdate, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if !singles[0].NextUpdate.IsZero() {
		t.Errorf("nextUpdate %s, expected none", singles[0].NextUpdate)
	}
	if want := thisUpdate.Add(OCSPValidityWithoutNextUpdate); !singles[0].ValidUntil().Equal(want) {
		t.Errorf("valid until %s, expected %s", singles[0].ValidUntil(), want)
	}
}

func TestParseOCSPResponseRejects(t *testing.T) {
	p := newOCSPPKI(t)
	good := p.response(t, crypto.SHA384, time.Now(), time.Now().Add(time.Hour))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"tryLater", ocsp.TryLaterErrorResponse, "tryLater"},
		{"unauthorized", ocsp.UnauthorizedErrorResponse, "unauthorized"},
		{"trailing data", append(append([]byte{}, good...), 0), "trailing data"},
		{"truncated", good[:len(good)-10], ""},
		{"certificate", p.cert.Raw, ""},
		{"empty", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseOCSPResponse(c.data)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestAddBytesOCSP(t *testing.T) {
	p := newOCSPPKI(t)
	der := p.response(t, crypto.SHA384, time.Now(), time.Now().Add(time.Hour))
	cases := []struct {
		name   string
		data   []byte
		added  int
		reason string
	}{
		{"DER", der, 1, ""},
		{"PEM", pem.EncodeToMemory(&pem.Block{Type: "OCSP RESPONSE", Bytes: der}), 1, ""},
		{"error response", ocsp.TryLaterErrorResponse, 0, "tryLater and no certificate status"},
		{"PEM of garbage", pem.EncodeToMemory(&pem.Block{Type: "OCSP RESPONSE", Bytes: []byte{1, 2, 3}}), 0, "OCSP response in its PEM blocks"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := &Set{}
			n, reason := set.AddBytes("response", c.data)
			if n != c.added {
				t.Fatalf("%d items added (%s), expected %d", n, reason, c.added)
			}
			if !strings.Contains(reason, c.reason) {
				t.Errorf("reason %q does not contain %q", reason, c.reason)
			}
			if n == 1 && set.Items[0].Kind != KindOCSP {
				t.Errorf("kind %s, expected %s", set.Items[0].Kind, KindOCSP)
			}
		})
	}
}

func TestOCSPStatusErrorNames(t *testing.T) {
	var status OCSPStatusError
	if _, err := ParseOCSPResponse(ocsp.MalformedRequestErrorResponse); !errors.As(err, &status) || status.Status != 1 {
		t.Fatalf("error %v, expected OCSPStatusError 1", err)
	}
	if !strings.Contains(OCSPStatusError{Status: 9}.Error(), "unknown status 9") {
		t.Errorf("status 9 reads %q", OCSPStatusError{Status: 9}.Error())
	}
}

// The status of each SingleResponse is decoded as golang.org/x/crypto/ocsp
// decodes the one it reads.
func TestParseOCSPResponseStatus(t *testing.T) {
	p := newOCSPPKI(t)
	thisUpdate := time.Now().Add(-time.Hour).Truncate(time.Second)
	revokedAt := thisUpdate.Add(-24 * time.Hour)
	cases := []struct {
		name string
		tmpl ocsp.Response
	}{
		{"good", ocsp.Response{Status: ocsp.Good}},
		{"unknown", ocsp.Response{Status: ocsp.Unknown}},
		{"revoked keyCompromise", ocsp.Response{Status: ocsp.Revoked, RevokedAt: revokedAt, RevocationReason: ocsp.KeyCompromise}},
		{"revoked certificateHold", ocsp.Response{Status: ocsp.Revoked, RevokedAt: revokedAt, RevocationReason: ocsp.CertificateHold}},
		{"revoked without reason", ocsp.Response{Status: ocsp.Revoked, RevokedAt: revokedAt}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.tmpl.ThisUpdate, c.tmpl.NextUpdate = thisUpdate, thisUpdate.Add(2*time.Hour)
			der := p.responseWith(t, c.tmpl)
			singles, err := ParseOCSPResponse(der)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ocsp.ParseResponseForCert(der, p.cert, p.ca)
			if err != nil {
				t.Fatal(err)
			}
			s := singles[0]
			if s.Status != want.Status {
				t.Errorf("status %d, expected %d", s.Status, want.Status)
			}
			if !s.RevokedAt.Equal(want.RevokedAt) {
				t.Errorf("revocation time %s, expected %s", s.RevokedAt, want.RevokedAt)
			}
			if s.RevocationReason != want.RevocationReason {
				t.Errorf("revocation reason %d, expected %d", s.RevocationReason, want.RevocationReason)
			}
		})
	}
}

// A critical single extension, which Cloister does not understand, rejects
// the SingleResponse about the certificate, and only that one.
func TestFindOCSPSingleResponseCriticalExtension(t *testing.T) {
	p, other := newOCSPPKI(t), newOCSPPKI(t)
	now := time.Now().Truncate(time.Second)
	critical := []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}
	withCritical := p.responseWith(t, ocsp.Response{Status: ocsp.Good, ThisUpdate: now, ExtraExtensions: critical})
	otherWithCritical := other.responseWith(t, ocsp.Response{Status: ocsp.Good, ThisUpdate: now, ExtraExtensions: critical})
	good := p.responseWith(t, ocsp.Response{Status: ocsp.Good, ThisUpdate: now})

	singles, err := ParseOCSPResponse(withCritical)
	if err != nil {
		t.Fatalf("a response with a critical single extension does not parse: %v", err)
	}
	_, err = FindOCSPSingleResponse(singles, p.cert, p.ca)
	if err == nil || !strings.Contains(err.Error(), "unsupported critical extension 1.2.3.4") {
		t.Errorf("error %v, expected one naming the critical extension 1.2.3.4", err)
	}

	singles, err = ParseOCSPResponse(testcert.OCSPJoin(t, p.caKey, otherWithCritical, good))
	if err != nil {
		t.Fatal(err)
	}
	s, err := FindOCSPSingleResponse(singles, p.cert, p.ca)
	if err != nil {
		t.Fatalf("FindOCSPSingleResponse: %v, expected no error: another certificate's critical extension does not matter", err)
	}
	if s.Index != 1 {
		t.Errorf("SingleResponse %d, expected 1", s.Index)
	}
}

// FindOCSPSingleResponse finds the SingleResponse about a certificate by
// its whole CertID wherever it is in the list. A response from another
// issuer with the same serial number must not be read for it, although
// golang.org/x/crypto/ocsp reads the first entry with the serial number.
func TestFindOCSPSingleResponse(t *testing.T) {
	p, other := newOCSPPKI(t), newOCSPPKI(t)
	thisUpdate := time.Now().Add(-time.Hour).Truncate(time.Second)
	period := func(tmpl ocsp.Response) ocsp.Response {
		tmpl.ThisUpdate, tmpl.NextUpdate = thisUpdate, thisUpdate.Add(2*time.Hour)
		return tmpl
	}
	good := p.responseWith(t, period(ocsp.Response{Status: ocsp.Good}))
	goodSHA1 := p.responseWith(t, period(ocsp.Response{Status: ocsp.Good, IssuerHash: crypto.SHA1}))
	revoked := p.responseWith(t, period(ocsp.Response{Status: ocsp.Revoked, RevokedAt: thisUpdate.Add(-time.Hour), RevocationReason: ocsp.KeyCompromise}))
	longer := p.responseWith(t, ocsp.Response{Status: ocsp.Good, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(3 * time.Hour)})
	// other.cert has serial 2 like p.cert, under another CA.
	otherRevoked := other.responseWith(t, period(ocsp.Response{Status: ocsp.Revoked, RevokedAt: thisUpdate.Add(-time.Hour)}))
	caGood, err := ocsp.CreateResponse(p.ca, p.ca, period(ocsp.Response{Status: ocsp.Good, SerialNumber: p.ca.SerialNumber, IssuerHash: crypto.SHA256}), p.caKey)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		parts  [][]byte
		index  int
		status int
		err    string
	}{
		{"only entry", [][]byte{good}, 0, ocsp.Good, ""},
		{"after another issuer's same serial", [][]byte{otherRevoked, good}, 1, ocsp.Good, ""},
		{"last of three", [][]byte{caGood, otherRevoked, good}, 2, ocsp.Good, ""},
		{"first of three", [][]byte{good, caGood, otherRevoked}, 0, ocsp.Good, ""},
		{"revoked in the middle", [][]byte{caGood, revoked, otherRevoked}, 1, ocsp.Revoked, ""},
		{"same status with two hashes", [][]byte{good, goodSHA1}, 0, ocsp.Good, ""},
		{"no matching entry", [][]byte{otherRevoked, caGood}, 0, 0, ErrNoOCSPSingleResponse.Error()},
		{"conflicting statuses", [][]byte{good, caGood, revoked}, 0, 0, "SingleResponses 0 (good, thisUpdate"},
		{"conflicting periods", [][]byte{longer, good}, 0, 0, "are both about certificate \"CN=test certificate\" (serial 2) but differ"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			der := testcert.OCSPJoin(t, p.caKey, c.parts...)
			singles, err := ParseOCSPResponse(der)
			if err != nil {
				t.Fatal(err)
			}
			if len(singles) != len(c.parts) {
				t.Fatalf("%d SingleResponses, expected %d", len(singles), len(c.parts))
			}
			s, err := FindOCSPSingleResponse(singles, p.cert, p.ca)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, expected one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Index != c.index {
				t.Errorf("SingleResponse %d, expected %d", s.Index, c.index)
			}
			if s.Status != c.status {
				t.Errorf("status %d, expected %d", s.Status, c.status)
			}
			if !s.CertID.Matches(p.cert, p.ca) {
				t.Error("the returned SingleResponse is about another certificate")
			}
			// The joined response verifies under the CA, as the verifier
			// checks it.
			if _, err := ocsp.ParseResponseForCert(der, p.cert, p.ca); err != nil {
				t.Errorf("golang.org/x/crypto/ocsp rejects the joined response: %v", err)
			}
		})
	}
}

// golang.org/x/crypto/ocsp reads the first SingleResponse with the serial
// number: in a response listing another issuer's certificate with the same
// serial first, its status is that certificate's. This is why Cloister
// reads the status from the entry whose whole CertID it matched.
func TestXCryptoOCSPReadsFirstSerial(t *testing.T) {
	p, other := newOCSPPKI(t), newOCSPPKI(t)
	now := time.Now().Truncate(time.Second)
	good := p.responseWith(t, ocsp.Response{Status: ocsp.Good, ThisUpdate: now})
	otherRevoked := other.responseWith(t, ocsp.Response{Status: ocsp.Revoked, ThisUpdate: now, RevokedAt: now.Add(-time.Hour)})
	der := testcert.OCSPJoin(t, p.caKey, otherRevoked, good)

	resp, err := ocsp.ParseResponseForCert(der, p.cert, p.ca)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != ocsp.Revoked {
		t.Fatalf("golang.org/x/crypto/ocsp read status %d, so it now selects by more than the serial number; update the comments on it in collateral/ocsp.go and tee/nvgpu/ocsp_status.go", resp.Status)
	}
	singles, err := ParseOCSPResponse(der)
	if err != nil {
		t.Fatal(err)
	}
	s, err := FindOCSPSingleResponse(singles, p.cert, p.ca)
	if err != nil {
		t.Fatalf("FindOCSPSingleResponse: %v", err)
	}
	if s.Status != ocsp.Good {
		t.Errorf("status %d, expected good from SingleResponse 1", s.Status)
	}
}
