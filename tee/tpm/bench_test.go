package tpm

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// loopWithCPU runs op in b.Loop and reports the allocations and the
// process CPU time per operation (cpu-ns/op).
func loopWithCPU(b *testing.B, op func()) {
	b.ReportAllocs()
	benchcpu.Loop(b, op)
}

// pinnedCase returns the accepted corpus case with a pinned AK.
func pinnedCase(b *testing.B) corpus.Case {
	c, ok := corpus.FirstAccepted(b, "tpm", func(c corpus.Case) bool { return c.Expect.OtherInputs["ak_public"] != "" })
	if !ok {
		b.Skip("no accepted case with a pinned AK in the corpus")
	}
	return c
}

// BenchmarkVerifyQuote measures a whole verification of a single quote
// with a pinned AK: decoding, the AK match, the signature, the PCR digest
// and the claims.
func BenchmarkVerifyQuote(b *testing.B) {
	c := pinnedCase(b)
	ev := attest.Evidence{Data: c.EvidenceBytes(b)}
	opts := attest.Options{Collateral: c.Collateral(b)}
	loopWithCPU(b, func() {
		if _, err := (Verifier{}).Verify(context.Background(), ev, opts); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkQuoteSignature measures the RSASSA-PKCS1-v1_5 verification of
// the same quote alone, the floor for BenchmarkVerifyQuote.
func BenchmarkQuoteSignature(b *testing.B) {
	c := pinnedCase(b)
	ev, err := ParseEvidence(c.EvidenceBytes(b))
	if err != nil {
		b.Fatal(err)
	}
	q := ev.Quotes[0]
	key := ev.AKKey.(*rsa.PublicKey)
	loopWithCPU(b, func() {
		digest := sha256.Sum256(q.Message)
		if err := rsa.VerifyPKCS1v15(key, q.Signature.Hash, digest[:], q.Signature.RSA); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkVerifyAttestation measures a GCE attestation: the AK
// certificate chain, three quotes and three event log replays.
func BenchmarkVerifyAttestation(b *testing.B) {
	var c corpus.Case
	for _, cc := range corpus.Cases(b, "tpm") {
		if cc.Expect.DefaultVerdict == "accept" && cc.Expect.OtherInputs["intermediate_ca"] != "" {
			c = cc
		}
	}
	if c.Dir == "" {
		b.Skip("no accepted GCE attestation in the corpus")
	}
	ev := attest.Evidence{Data: c.EvidenceBytes(b)}
	opts := attest.Options{At: c.Time(b), Collateral: c.Collateral(b)}
	loopWithCPU(b, func() {
		if _, err := (Verifier{}).Verify(context.Background(), ev, opts); err != nil {
			b.Fatal(err)
		}
	})
}
