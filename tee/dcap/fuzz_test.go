package dcap

import (
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// FuzzVerify runs the whole verifier on mutated SGX and TDX quotes with the
// collateral of every case, so that mutations of the certification data
// reach the PCK chain parser and the collateral checks, which ParseQuote
// alone never calls.
func FuzzVerify(f *testing.F) {
	cases := append(corpus.Cases(f, "sgx"), corpus.Cases(f, "tdx")...)
	corpus.AddSeeds(f, cases)
	opts := attest.Options{Collateral: corpus.MergedCollateral(f, cases)}
	if len(cases) > 0 {
		opts.At = cases[0].Time(f)
	}
	corpus.FuzzVerifier(f, NewVerifier(), opts)
}
