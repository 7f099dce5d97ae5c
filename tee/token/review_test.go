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
	"errors"
	"math/big"
	"strings"
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

// TestReviewITAStatusClosedSet verifies an Intel Trust Authority token
// whose TCB status is not one of Intel's: it must be rejected by name, not
// passed on for the appraisal to compare with its list.
func TestReviewITAStatusClosedSet(t *testing.T) {
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signingKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	root := reviewCert(t, "ITA test root", "Cloister tests", &rootKey.PublicKey, nil, rootKey, true, now)
	leaf := reviewCert(t, "ITA test signing", "Cloister tests", &signingKey.PublicKey, root, rootKey, false, now)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &signingKey.PublicKey, KeyID: "k1", Algorithm: string(jose.PS384), Use: "sig",
		Certificates: []*x509.Certificate{leaf, root},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	set := &collateral.Set{}
	for name, data := range map[string][]byte{"jwks.json": jwks, "root.der": root.Raw} {
		if n, reason := set.AddBytes(name, data); n == 0 {
			t.Fatal(reason)
		}
	}

	for _, tc := range []struct {
		status string
		ok     bool
	}{
		{attest.TCBOutOfDate, true},
		{"Fine", false},
	} {
		claims := map[string]any{
			"iss": itaIssuer, "exp": now.Add(time.Hour).Unix(), "iat": now.Add(-time.Minute).Unix(),
			"attester_type": "TDX", "tdx_is_debuggable": false, "tdx_mrtd": strings.Repeat("ab", 48),
			"attester_tcb_status": tc.status,
		}
		payload, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS384, Key: signingKey}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
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

		c, err := ITA.Verify(context.Background(), attest.Evidence{Data: []byte(token)}, attest.Options{At: now, Collateral: set})
		switch {
		case tc.ok && err != nil:
			t.Fatalf("status %s: %v", tc.status, err)
		case tc.ok && c.TCB.Status != tc.status:
			t.Errorf("status %s: claims carry %q", tc.status, c.TCB.Status)
		case !tc.ok && !errors.Is(err, attest.ErrMalformed):
			t.Errorf("status %s: error %v, expected an ErrMalformed error naming the status", tc.status, err)
		}
	}
}
