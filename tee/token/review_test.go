package token

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

func subject(cn, org string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{org}}
}

// TestReviewEmulatedRootMarksClaims signs a Confidential Space PKI token
// under a development root passed as a trust anchor: the claims must say
// that the evidence is emulated, so that the default appraisal rejects it.
func TestReviewEmulatedRootMarksClaims(t *testing.T) {
	rootKey := testcert.ECDSAKey(t, elliptic.P256())
	svc := &testService{key: rsaKey(t, 0)}
	root := issue(t, subject("development token root", attest.EmulatedOrganization), &rootKey.PublicKey, nil, rootKey, true)
	leaf := issue(t, subject("development token signer", attest.EmulatedOrganization), &svc.key.PublicKey, root, rootKey, false)

	claims := map[string]any{
		"iss": gcpIssuer, "exp": testNow.Add(time.Hour).Unix(), "iat": testNow.Add(-time.Minute).Unix(),
		"dbgstat": gcpDebugDisabled, "hwmodel": "GCP_INTEL_TDX", "swname": "CONFIDENTIAL_SPACE",
	}
	token := svc.sign(t, jose.RS256, claims, x5cHeader([]*x509.Certificate{leaf}))

	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: root.Raw, Certificate: root})
	c, err := GCP.Verify(context.Background(), attest.Evidence{Data: []byte(token)}, attest.Options{At: testNow, TrustAnchors: anchors})
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
	rootKey := testcert.ECDSAKey(t, elliptic.P256())
	svc := &testService{key: rsaKey(t, 0), kid: "k1"}
	root := issue(t, subject("ITA test root", "Cloister tests"), &rootKey.PublicKey, nil, rootKey, true)
	leaf := issue(t, subject("ITA test signing", "Cloister tests"), &svc.key.PublicKey, root, rootKey, false)
	svc.chain = []*x509.Certificate{leaf, root}
	jwks := svc.jwks(t, string(jose.PS384))

	set := &collateral.Set{}
	for name, data := range map[string][]byte{"jwks.json": jwks, "root.der": root.Raw} {
		if n, reason := set.AddBytes(name, data); n == 0 {
			t.Fatal(reason)
		}
	}

	for _, tc := range []struct {
		status   string
		ok       bool
		want     string
		relaunch bool
	}{
		{attest.TCBOutOfDate, true, attest.TCBOutOfDate, false},
		{"TDRelaunchAdvised", true, attest.TCBOutOfDate, true},
		{"TDRelaunchAdvisedConfigurationNeeded", true, attest.TCBOutOfDateConfigurationNeeded, true},
		{"Fine", false, "", false},
	} {
		claims := map[string]any{
			"iss": itaIssuer, "exp": testNow.Add(time.Hour).Unix(), "iat": testNow.Add(-time.Minute).Unix(),
			"attester_type": "TDX", "tdx_is_debuggable": false, "tdx_mrtd": strings.Repeat("ab", 48),
			"attester_tcb_status": tc.status,
		}
		token := svc.sign(t, jose.PS384, claims, nil)

		c, err := ITA.Verify(context.Background(), attest.Evidence{Data: []byte(token)}, attest.Options{At: testNow, Collateral: set})
		switch {
		case tc.ok && err != nil:
			t.Fatalf("status %s: %v", tc.status, err)
		case tc.ok && (c.TCB.Status != tc.want || c.TCB.RelaunchAdvised != tc.relaunch):
			t.Errorf("status %s: claims carry %q, relaunch advised %v; expected %q, %v", tc.status, c.TCB.Status, c.TCB.RelaunchAdvised, tc.want, tc.relaunch)
		case !tc.ok && !errors.Is(err, attest.ErrMalformed):
			t.Errorf("status %s: error %v, expected an ErrMalformed error naming the status", tc.status, err)
		}
	}
}
