package dcap

import (
	"context"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// A root or collateral scoped to one of SGX and TDX serves only that TEE's
// quotes, also when one Verifier, whose root cache is keyed by the trust
// anchors, verifies under both scopes in turn.
func TestScopedTrustAnchors(t *testing.T) {
	v := NewVerifier()
	for _, tee := range []string{"sgx", "tdx"} {
		other := map[string]string{"sgx": "tdx", "tdx": "sgx"}[tee]
		e, set, anchors := emulated(t, EmulatorOptions{TEE: tee})
		ev, err := e.Attest(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		scoped := func(s *collateral.Set, tees ...string) *collateral.Set {
			out := &collateral.Set{}
			for _, it := range s.Items {
				out.Add(&collateral.Item{Kind: it.Kind, Source: it.Source, Raw: it.Raw,
					Certificate: it.Certificate, CRL: it.CRL, PublicKey: it.PublicKey})
			}
			out.ScopeTo(tees)
			return out
		}

		for _, tc := range []struct {
			name       string
			anchors    *collateral.Set
			collateral *collateral.Set
			wantErr    error
			// wantTCBInfo is the result of the tcb-info check when
			// Verify succeeds.
			wantTCBInfo attest.CheckResult
		}{
			{"root scoped to the TEE", scoped(anchors, tee), set, nil, attest.CheckPassed},
			{"root scoped to both", scoped(anchors, other, tee), set, nil, attest.CheckPassed},
			{"root scoped to the other TEE", scoped(anchors, other), set, attest.ErrChain, ""},
			{"collateral scoped to the TEE", anchors, scoped(set, tee), nil, attest.CheckPassed},
			{"collateral scoped to the other TEE", anchors, scoped(set, other), nil, attest.CheckNotChecked},
		} {
			t.Run(tee+"/"+tc.name, func(t *testing.T) {
				claims, err := v.Verify(context.Background(), *ev, attest.Options{Collateral: tc.collateral, TrustAnchors: tc.anchors})
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if ch, _ := claims.FindCheck(checkTCBInfo); ch.Result != tc.wantTCBInfo {
					t.Errorf("%s check = %s %s, want %s", checkTCBInfo, ch.Result, ch.Detail, tc.wantTCBInfo)
				}
			})
		}
	}
}
