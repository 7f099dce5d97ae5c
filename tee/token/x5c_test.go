package token

import (
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// TestX5CSigningCertificateUsage rejects a token signing certificate that
// is a CA or whose key usage leaves out digitalSignature, in the token's
// x5c header (Confidential Space) and in a JWKS key's x5c (Intel Trust
// Authority). A leaf without a key usage extension, as Google issues, is
// accepted.
func TestX5CSigningCertificateUsage(t *testing.T) {
	rootKey := testcert.ECDSAKey(t, elliptic.P256())
	root := issue(t, pkix.Name{CommonName: "test token root"}, &rootKey.PublicKey, nil, rootKey, true)
	s := newService(t)
	leaf := func(serial int64, ca bool, usage x509.KeyUsage) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test token signing"},
			NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour),
			BasicConstraintsValid: true, IsCA: ca, KeyUsage: usage,
		}
		return testcert.Issue(t, tmpl, root, &s.key.PublicKey, rootKey)
	}

	cases := []struct {
		name string
		leaf *x509.Certificate
		want string // part of the error, "" when accepted
	}{
		{"no key usage extension", leaf(1, false, 0), ""},
		{"digitalSignature", leaf(2, false, x509.KeyUsageDigitalSignature), ""},
		{"certSign only", leaf(3, false, x509.KeyUsageCertSign), "leaves out digitalSignature"},
		{"keyEncipherment only", leaf(4, false, x509.KeyUsageKeyEncipherment), "leaves out digitalSignature"},
		{"CA certificate", leaf(5, true, x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign), "is a CA certificate"},
	}
	for _, tc := range cases {
		t.Run("x5c header/"+tc.name, func(t *testing.T) {
			token := s.sign(t, jose.RS256, gcpClaims(), x5cHeader([]*x509.Certificate{tc.leaf, root}))
			_, err := verifyWith(t, GCP, token, setOf(t, root.Raw), nil)
			checkUsageError(t, err, tc.want)
		})
		t.Run("JWKS x5c/"+tc.name, func(t *testing.T) {
			chained := &testService{key: s.key, kid: s.kid, chain: []*x509.Certificate{tc.leaf, root}}
			token := chained.sign(t, jose.PS384, itaClaims(t), nil)
			_, err := verifyWith(t, ITA, token, setOf(t, chained.jwks(t, "PS384"), root.Raw), nil)
			checkUsageError(t, err, tc.want)
		})
	}
}

func checkUsageError(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("rejected: %v", err)
		}
		return
	}
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, want a chain error", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if !strings.Contains(err.Error(), "test token signing") {
		t.Errorf("error %q does not name the certificate", err)
	}
}

// TestX5CHeaderNameExact reads the x5c header parameter only under its
// exact name, as go-jose does. A chain under "X5C" is an unknown parameter
// and gives no key, so the token needs a JWKS key.
func TestX5CHeaderNameExact(t *testing.T) {
	s := newService(t).withChain(t)
	chain := x5cHeader(s.chain)["x5c"]
	token := s.sign(t, jose.RS256, gcpClaims(), map[jose.HeaderKey]any{"X5C": chain})

	_, err := verifyWith(t, GCP, token, setOf(t, s.chain[2].Raw), nil)
	if !errors.Is(err, attest.ErrCollateralMissing) {
		t.Errorf("chain under X5C with only the root: error %v, want collateral missing (no JWKS key)", err)
	}
	if _, err := verifyWith(t, GCP, token, setOf(t, s.jwks(t, "RS256")), nil); err != nil {
		t.Errorf("chain under X5C with the JWKS key: %v", err)
	}
}
