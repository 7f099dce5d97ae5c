// Package testcert generates keys, certificates and COSE_Sign1 messages for
// tests. Each helper fails the test on any error, so that a test helper
// that builds a certificate chain or a signed token states only the fields
// that matter to it.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// Organization is the subject organization of the certificates from CA.
const Organization = "Cloister test"

// ECDSAKey generates an ECDSA key on curve.
func ECDSAKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Issue creates the certificate of tmpl for the public key pub, signed by
// signer as parent, and parses it. A nil parent makes the certificate
// self-signed.
func Issue(t testing.TB, tmpl, parent *x509.Certificate, pub, signer any) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// CA returns the template of a CA certificate with the common name cn and
// the organization Organization, valid from notBefore to notAfter, with
// the key usages usage.
func CA(serial int64, cn string, notBefore, notAfter time.Time, usage x509.KeyUsage) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{Organization}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              usage,
	}
}
