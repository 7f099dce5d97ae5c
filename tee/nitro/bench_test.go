package nitro

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

// BenchmarkVerify measures a full verification of a real production
// document with a warm chain cache: CBOR and COSE decoding, the field
// checks, the cached chain and the ES384 signature.
func BenchmarkVerify(b *testing.B) {
	var c corpus.Case
	for _, cc := range corpus.Cases(b, "nitro") {
		if cc.Expect.DefaultVerdict == "accept" && cc.Expect.Debug != nil && !*cc.Expect.Debug {
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

// BenchmarkES384Signature measures the bare ECDSA P-384 verification of a
// SHA-384 digest, the floor under BenchmarkVerify.
func BenchmarkES384Signature(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha512.Sum384([]byte("attestation document"))
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
