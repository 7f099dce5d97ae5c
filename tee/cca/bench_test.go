package cca

import (
	"crypto/elliptic"
	"crypto/sha512"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// BenchmarkVerify measures full verifications of each accepted corpus
// token under its CPAK from the case's collateral, as the CLI passes it, and
// the bare ECDSA P-384 verification of a SHA-384 digest as the floor. A
// CCA token carries two ES384 signatures, so twice the floor is the minimum.
func BenchmarkVerify(b *testing.B) {
	for _, c := range corpus.Cases(b, "cca") {
		if c.Expect.DefaultVerdict != "accept" {
			continue
		}
		data := c.EvidenceBytes(b)
		opts := attest.Options{Collateral: c.Collateral(b)}
		b.Run(c.Name, func(b *testing.B) {
			benchcpu.Verify(b, Verifier{}, attest.Evidence{Data: data}, opts)
		})
	}
	b.Run("bare-es384", func(b *testing.B) {
		digest := sha512.Sum384([]byte("CCA token"))
		benchcpu.BareECDSA(b, elliptic.P384(), digest[:])
	})
}
