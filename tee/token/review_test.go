package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// reviewCert issues a certificate with the given subject organization,
// self-signed when parent is nil.
func reviewCert(t *testing.T, cn, org string, pub any, parent *x509.Certificate, signer any, ca bool, now time.Time) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
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

// TestReviewEmulatedRootMarksClaims signs a Confidential Space PKI token
// under a development root passed as a trust anchor: the claims must say
// that the evidence is emulated, so that the default appraisal rejects it.
func TestReviewEmulatedRootMarksClaims(t *testing.T) {
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	root := reviewCert(t, "development token root", attest.EmulatedOrganization, &rootKey.PublicKey, nil, rootKey, true, now)
	leaf := reviewCert(t, "development token signer", attest.EmulatedOrganization, &leafKey.PublicKey, root, rootKey, false, now)

	claims := map[string]any{
		"iss": gcpIssuer, "exp": now.Add(time.Hour).Unix(), "iat": now.Add(-time.Minute).Unix(),
		"dbgstat": gcpDebugDisabled, "hwmodel": "GCP_INTEL_TDX", "swname": "CONFIDENTIAL_SPACE",
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").
		WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(leaf.Raw)})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: leafKey}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	token, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}

	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root})
	c, err := GCP.Verify(context.Background(), attest.Evidence{Data: []byte(token)}, attest.Options{At: now, TrustAnchors: anchors})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.TrustAnchor.Kind != attest.AnchorEmulatedRoot {
		t.Fatalf("trust anchor kind %q, expected %q", c.TrustAnchor.Kind, attest.AnchorEmulatedRoot)
	}
	if !c.Emulated {
		t.Error("claims.Emulated is false for a token that chains to a development root")
	}
}
