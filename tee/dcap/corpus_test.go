package dcap

import (
	"context"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// TestCorpus verifies every SGX and TDX case of the evidence corpus at its
// verification time and compares verdict, TCB status, advisories,
// measurements and the rejection reason with its expect.json.
func TestCorpus(t *testing.T) {
	for _, tee := range []string{"sgx", "tdx"} {
		for _, c := range corpus.Cases(t, tee) {
			t.Run(c.Name, func(t *testing.T) {
				ev := attest.Evidence{Format: "dcap", Data: c.EvidenceBytes(t)}
				res := corpus.CheckVerdicts(t, c, ev, c.Options(t))
				if corpus.CheckUnverified(t, c, res) {
					return
				}
				if res.Claims == nil {
					t.Fatalf("no claims: %v", res.Error)
				}
				checkCorpusClaims(t, c, res.Claims)
			})
		}
	}
}

func checkCorpusClaims(t *testing.T, c corpus.Case, claims *attest.Claims) {
	t.Helper()
	// A negative case may change the collateral so that no TCB level
	// applies, which leaves the status not determined.
	undetermined := c.Negative() && claims.TCB.Status == attest.TCBNotDetermined && c.Expect.TCBStatus != attest.TCBNotDetermined
	if !undetermined {
		corpus.CheckTCB(t, c, claims)
	}
	corpus.CheckClaims(t, c, claims)
	if claims.TrustAnchor.Kind != attest.AnchorCallerRoot && claims.TrustAnchor.Kind != attest.AnchorVendorRoot {
		t.Errorf("trust anchor kind %s", claims.TrustAnchor.Kind)
	}
}

// TestCorpusTrustAnchors checks the root rule on a real quote: without a
// supplied root the embedded Intel SGX Root CA verifies it as the vendor
// root, and a caller's root replaces the embedded one.
func TestCorpusTrustAnchors(t *testing.T) {
	c, ok := corpus.FirstAccepted(t, "tdx", nil)
	if !ok {
		t.Skip("no accepted TDX case in the corpus")
	}
	ev := attest.Evidence{Data: c.EvidenceBytes(t)}

	withoutRoots := &collateral.Set{}
	for _, it := range c.Collateral(t).Items {
		if it.Kind != collateral.KindCertificate || !collateral.IsSelfSigned(it.Certificate) {
			withoutRoots.Add(it)
		}
	}
	claims, err := NewVerifier().Verify(context.Background(), ev, attest.Options{At: c.Time(t), Collateral: withoutRoots})
	if err != nil {
		t.Fatalf("with the embedded root: %v", err)
	}
	if claims.TrustAnchor.Kind != attest.AnchorVendorRoot || claims.TrustAnchor.SHA256.String() != IntelRootFingerprint {
		t.Errorf("trust anchor %+v, expected the Intel SGX Root CA as vendor root", claims.TrustAnchor)
	}

	e, err := NewEmulator(EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	_, err = NewVerifier().Verify(context.Background(), ev, attest.Options{At: c.Time(t), Collateral: withoutRoots, TrustAnchors: anchors})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("with another caller root: %v, expected a chain error", err)
	}
}
