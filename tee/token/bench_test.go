package token

import (
	"context"
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
	ctx := context.Background()
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(b, tee) {
			if c.Negative() {
				continue
			}
			data := c.EvidenceBytes(b)
			opts := attest.Options{At: c.Time(b), Collateral: c.Collateral(b)}
			v, _ := attest.Lookup(tee)
			b.Run(c.Name, func(b *testing.B) {
				benchcpu.Loop(b, func() {
					if claims, err := v.Verify(ctx, attest.Evidence{Data: data}, opts); claims == nil {
						b.Fatal(err)
					}
				})
			})
		}
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
