package psa

import (
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/cose"
)

// FuzzVerify feeds arbitrary bytes to the PSA verifier, seeded with the
// corpus tokens and verified under the corpus keys: it must never panic, and
// it returns claims only when it accepts or when a check after the signature
// failed.
func FuzzVerify(f *testing.F) {
	cases := corpus.Cases(f, "psa")
	corpus.AddSeeds(f, cases)
	corpus.FuzzVerifier(f, Verifier{}, attest.Options{Collateral: corpus.MergedCollateral(f, cases)})
}

// FuzzParseClaims feeds arbitrary bytes to the claims-set parser.
func FuzzParseClaims(f *testing.F) {
	for _, c := range corpus.Cases(f, "psa") {
		if msg, err := cose.DecodeSign1(c.EvidenceBytes(f)); err == nil {
			f.Add(msg.Message.Payload)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseClaims(data)
	})
}
