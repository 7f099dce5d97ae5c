package cca

import (
	"context"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// FuzzVerify feeds arbitrary bytes to the CCA verifier, seeded with the
// corpus tokens and verified under the corpus keys: it must never panic.
func FuzzVerify(f *testing.F) {
	set := &collateral.Set{}
	for _, c := range corpus.Cases(f, "cca") {
		f.Add(c.EvidenceBytes(f))
		set.Merge(c.Collateral(f))
	}
	opts := attest.Options{Collateral: set}
	f.Fuzz(func(t *testing.T, data []byte) {
		(Verifier{}).Detect(data)
		c, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, opts)
		if err == nil && c == nil {
			t.Fatal("accepted without claims")
		}
	})
}
