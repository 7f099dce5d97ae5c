package cca

import (
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// FuzzVerify feeds arbitrary bytes to the CCA verifier, seeded with the
// corpus tokens and verified under the corpus keys: it must never panic.
func FuzzVerify(f *testing.F) {
	cases := corpus.Cases(f, "cca")
	corpus.AddSeeds(f, cases)
	corpus.FuzzVerifier(f, Verifier{}, attest.Options{Collateral: corpus.MergedCollateral(f, cases)})
}
