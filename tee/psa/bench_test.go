package psa

import (
	"crypto/elliptic"
	"crypto/sha256"
	"testing"

	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// BenchmarkVerify measures full verifications of each accepted corpus
// token under its IAK from the case's collateral, as the CLI passes it, and
// the bare ECDSA P-256 verification of a SHA-256 digest as the floor.
func BenchmarkVerify(b *testing.B) {
	benchcpu.VerifyCases(b, Verifier{}, corpus.AcceptedCases(b, "psa"))
	b.Run("bare-es256", func(b *testing.B) {
		digest := sha256.Sum256([]byte("PSA token"))
		benchcpu.BareECDSA(b, elliptic.P256(), digest[:])
	})
}
