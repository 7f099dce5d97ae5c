package collateral

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
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
