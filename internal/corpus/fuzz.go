package corpus

import (
	"context"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// AddSeeds adds the evidence of each case to f's seed corpus.
func AddSeeds(f *testing.F, cases []Case) {
	f.Helper()
	for _, c := range cases {
		f.Add(c.EvidenceBytes(f))
	}
}

// MergedCollateral returns the collateral of all cases in one set, so that
// a fuzz input derived from any case finds its keys and chain.
func MergedCollateral(t testing.TB, cases []Case) *collateral.Set {
	t.Helper()
	set := &collateral.Set{}
	for _, c := range cases {
		set.Merge(c.Collateral(t))
	}
	return set
}

// FuzzVerifier runs the fuzz target of a verifier: v.Detect and v.Verify
// with opts on each input, and v.Inspect when v is an attest.Inspector.
// None may panic, and Verify must return claims or an error.
func FuzzVerifier(f *testing.F, v attest.Verifier, opts attest.Options) {
	f.Helper()
	inspector, _ := v.(attest.Inspector)
	f.Fuzz(func(t *testing.T, data []byte) {
		v.Detect(data)
		claims, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts)
		if err == nil && claims == nil {
			t.Fatal("Verify returned neither claims nor an error")
		}
		if inspector != nil {
			_, _ = inspector.Inspect(data)
		}
	})
}
