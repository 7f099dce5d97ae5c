package psa

import (
	"context"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/cose"
)

// FuzzVerify feeds arbitrary bytes to the PSA verifier, seeded with the
// corpus tokens and verified under the corpus keys: it must never panic, and
// it returns claims only when it accepts or when a check after the signature
// failed.
func FuzzVerify(f *testing.F) {
	set := &collateral.Set{}
	for _, c := range corpus.Cases(f, "psa") {
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
