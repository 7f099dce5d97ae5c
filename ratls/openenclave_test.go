package ratls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// oeCert returns a certificate for a new key whose extension oid carries
// Open Enclave SGX ECDSA evidence (attestation header, quote, custom
// claims buffer). claims builds the custom claims buffer from the new
// key's SubjectPublicKeyInfo in PEM, as Open Enclave writes it.
func oeCert(t testing.TB, oid asn1.ObjectIdentifier, claims func(keyPEM []byte) []byte) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	buf := claims(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spkiOf(t, key)}))
	rd := sha256.Sum256(buf)
	data := append(fakeReport(false, [32]byte{}, rd[:]), buf...)
	return selfSign(t, key, []pkix.Extension{{Id: oid, Value: oeHeader(data)}})
}

// Open Enclave (oe_get_attestation_certificate_with_evidence) passes the
// certificate's public key in PEM, with a terminating NUL, as the whole
// custom claims buffer, and writes the evidence under OID
// 1.3.6.1.4.1.311.105.2 (older releases 1.2.840.113556.10.1.2). OID
// 1.3.6.1.4.1.311.105.1 carries an OE report, a different layout.
func TestOpenEnclaveCertificate(t *testing.T) {
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spkiOf(t, otherKey)})
	withNUL := func(keyPEM []byte) []byte { return append(keyPEM, 0) }

	tests := []struct {
		name   string
		oid    asn1.ObjectIdentifier
		claims func(keyPEM []byte) []byte
		kind   error
		want   string
	}{
		{name: "evidence OID", oid: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 105, 2}, claims: withNUL},
		{name: "older evidence OID", oid: asn1.ObjectIdentifier{1, 2, 840, 113556, 10, 1, 2}, claims: withNUL},
		{name: "key without NUL", oid: OIDOpenEnclaveEvidence, claims: func(k []byte) []byte { return k }},
		{name: "report OID", oid: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 105, 1}, claims: withNUL,
			kind: attest.ErrUnsupported, want: "Open Enclave report"},
		{name: "older report OID", oid: asn1.ObjectIdentifier{1, 2, 840, 113556, 10, 1, 1}, claims: withNUL,
			kind: attest.ErrUnsupported, want: "Open Enclave report"},
		{name: "key among serialized claims", oid: OIDOpenEnclaveEvidence,
			claims: func(k []byte) []byte {
				return oeCustomClaims(map[string][]byte{"peer_key": k, "role": []byte("relay")})
			},
			kind: attest.ErrBinding, want: "custom claims buffer"},
		{name: "another key", oid: OIDOpenEnclaveEvidence, claims: func([]byte) []byte { return append(otherPEM, 0) },
			kind: attest.ErrBinding, want: "another key"},
		{name: "data before key", oid: OIDOpenEnclaveEvidence, claims: func(k []byte) []byte { return append([]byte("peer_key\n"), k...) },
			kind: attest.ErrBinding, want: "not a PEM PUBLIC KEY block"},
		{name: "key followed by data", oid: OIDOpenEnclaveEvidence, claims: func(k []byte) []byte { return append(k, "extra"...) },
			kind: attest.ErrBinding, want: "5 bytes follow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := oeCert(t, tt.oid, tt.claims)
			claims, ce, err := VerifyCertificate(context.Background(), cert, attest.Options{})
			if tt.kind != nil {
				expectCertRejected(t, err, tt.kind, tt.want)
				return
			}
			expectCertVerified(t, claims, ce, err, LayoutOpenEnclave, RuleOpenEnclave)
		})
	}
}

// expectCertVerified checks that VerifyCertificate accepted the certificate
// and reported the given evidence layout and binding rule.
func expectCertVerified(t *testing.T, claims *attest.Claims, ce *CertEvidence, err error, layout Layout, rule BindingRule) {
	t.Helper()
	if err != nil {
		t.Fatalf("VerifyCertificate: %v", err)
	}
	if ce.Layout != layout {
		t.Errorf("layout %s, want %s", ce.Layout, layout)
	}
	if got := claims.Attributes[AttrBindingRule]; got != string(rule) {
		t.Errorf("rule %v, want %s", got, rule)
	}
}

// expectCertRejected checks that VerifyCertificate failed with an error of
// the given kind whose message contains want.
func expectCertRejected(t *testing.T, err, kind error, want string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("error %v, want kind %v", err, kind)
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v does not contain %q", err, want)
	}
}
