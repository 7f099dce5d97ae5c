package cca

import (
	"crypto/elliptic"
	"crypto/sha512"
	"testing"

	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// BenchmarkVerify measures full verifications of each accepted corpus
// token under its CPAK from the case's collateral, as the CLI passes it, and
// the bare ECDSA P-384 verification of a SHA-384 digest as the floor. A
// CCA token carries two ES384 signatures, so twice the floor is the minimum.
func BenchmarkVerify(b *testing.B) {
	benchcpu.VerifyCases(b, Verifier{}, corpus.AcceptedCases(b, "cca"))
	b.Run("bare-es384", func(b *testing.B) {
		digest := sha512.Sum384([]byte("CCA token"))
		benchcpu.BareECDSA(b, elliptic.P384(), digest[:])
	})
}
