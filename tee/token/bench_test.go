package token

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// BenchmarkVerify measures full verifications of the verified corpus
// tokens at their verification times under the case's collateral, as the
// CLI passes it, and the bare RSA-2048 PKCS #1 v1.5 verification of a
// SHA-256 digest as the floor.
func BenchmarkVerify(b *testing.B) {
	for _, tee := range tokenTEEs {
		var verified []corpus.Case
		for _, c := range corpus.Cases(b, tee) {
			if !c.Negative() {
				verified = append(verified, c)
			}
		}
		v, _ := attest.Lookup(tee)
		benchcpu.VerifyCases(b, v, verified)
	}
	b.Run("bare-rs256", func(b *testing.B) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			b.Fatal(err)
		}
		digest := sha256.Sum256([]byte("attestation token"))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		if err != nil {
			b.Fatal(err)
		}
		benchcpu.Loop(b, func() {
			if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
				b.Fatal(err)
			}
		})
	})
}
