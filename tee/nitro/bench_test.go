package nitro

import (
	"crypto/elliptic"
	"crypto/sha512"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// BenchmarkVerify measures full verifications of a real production
// document with a warm chain cache, and the bare ECDSA P-384 verification
// of a SHA-384 digest as the floor, in one function so that -count
// interleaves them on a busy machine. embedded-root trusts the embedded
// AWS root. collateral-dir passes the root as collateral, as the CLI does,
// so attest.Roots adds a self-signature check of that root.
func BenchmarkVerify(b *testing.B) {
	c, ok := corpus.FirstAccepted(b, "nitro", func(c corpus.Case) bool { return c.Expect.Debug != nil && !*c.Expect.Debug })
	if !ok {
		b.Fatal("no accepted production (non-debug) Nitro case in the corpus")
	}
	data := c.EvidenceBytes(b)
	configs := []struct {
		name string
		opts attest.Options
	}{
		{"embedded-root", attest.Options{At: c.Time(b)}},
		{"collateral-dir", attest.Options{At: c.Time(b), Collateral: c.Collateral(b)}},
	}
	for _, cfg := range configs {
		b.Run(cfg.name, func(b *testing.B) {
			benchcpu.Verify(b, &Verifier{}, attest.Evidence{Data: data}, cfg.opts)
		})
	}
	b.Run("bare-es384", benchmarkP384)
}

func benchmarkP384(b *testing.B) {
	digest := sha512.Sum384([]byte("attestation document"))
	benchcpu.BareECDSA(b, elliptic.P384(), digest[:])
}
