package nvgpu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// BenchmarkVerify measures a full verification of a real Hopper report
// with a warm chain cache: hex decoding, SPDM parsing, leaf selection, the
// cached chain, the FWID comparison and the P-384 signature.
func BenchmarkVerify(b *testing.B) {
	var c corpus.Case
	for _, cc := range corpus.Cases(b, "nvidia-gpu") {
		if cc.Expect.DefaultVerdict == "accept" {
			c = cc
			break
		}
	}
	data := c.EvidenceBytes(b)
	opts := attest.Options{At: c.Time(b), Collateral: c.Collateral(b)}
	v := &Verifier{}
	ctx := context.Background()
	if _, err := v.Verify(ctx, attest.Evidence{Data: data}, opts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, attest.Evidence{Data: data}, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkP384Signature measures the bare ECDSA P-384 verification of a
// SHA-384 digest, the floor under BenchmarkVerify.
func BenchmarkP384Signature(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha512.Sum384([]byte("SPDM transcript"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			b.Fatal("signature does not verify")
		}
	}
}
