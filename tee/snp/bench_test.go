package snp

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"math/big"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/benchcpu"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// benchCase returns a real accepted report with its options.
func benchCase(b *testing.B) ([]byte, attest.Options, *Endorsement) {
	for _, c := range corpus.Cases(b, "snp") {
		if c.Name != "snp/milan-vcek-v2-cmc" {
			continue
		}
		data := c.EvidenceBytes(b)
		opts := attest.Options{At: c.Time(b), Collateral: c.Collateral(b)}
		var leaf *Endorsement
		for _, cert := range c.Collateral(b).Certificates() {
			if e, err := parseEndorsement(cert); err == nil {
				leaf = e
			}
		}
		return data, opts, leaf
	}
	b.Skip("the Milan VCEK case is not in the corpus")
	return nil, attest.Options{}, nil
}

// BenchmarkVerifyWarm measures a full verification of a real report with
// the chain cache warm.
func BenchmarkVerifyWarm(b *testing.B) {
	data, opts, _ := benchCase(b)
	v := &Verifier{}
	ev := attest.Evidence{Data: data}
	if _, err := v.Verify(context.Background(), ev, opts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), ev, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkECDSAP384Verify measures the bare ECDSA P-384 verification of
// the same report's signature, the floor of a warm verification.
func BenchmarkECDSAP384Verify(b *testing.B) {
	data, _, leaf := benchCase(b)
	r, err := ParseReport(data)
	if err != nil {
		b.Fatal(err)
	}
	sigR := new(big.Int).SetBytes(r.SignatureR[:])
	sigS := new(big.Int).SetBytes(r.SignatureS[:])
	b.ReportAllocs()
	for b.Loop() {
		digest := sha512.Sum384(data[:signedSize])
		if !ecdsaVerify(leaf, digest[:], sigR, sigS) {
			b.Fatal("signature does not verify")
		}
	}
}

func ecdsaVerify(e *Endorsement, digest []byte, r, s *big.Int) bool {
	return ecdsa.Verify(e.Key, digest, r, s)
}

// BenchmarkVerifyWarmRatio runs a warm verification and a bare ECDSA P-384
// verification of the same report alternately on one locked OS thread and
// reports the ratio of the thread CPU time each took. Thread CPU time
// (CLOCK_THREAD_CPUTIME_ID) leaves out the time other processes take the
// CPU, which makes wall time useless on a loaded machine.
func BenchmarkVerifyWarmRatio(b *testing.B) {
	data, opts, leaf := benchCase(b)
	v := &Verifier{}
	ev := attest.Evidence{Data: data}
	if _, err := v.Verify(context.Background(), ev, opts); err != nil {
		b.Fatal(err)
	}
	r, err := ParseReport(data)
	if err != nil {
		b.Fatal(err)
	}
	sigR := new(big.Int).SetBytes(r.SignatureR[:])
	sigS := new(big.Int).SetBytes(r.SignatureS[:])

	metrics := benchcpu.Metrics{Measured: "warm-cpu-ns/op", Baseline: "ecdsa-cpu-ns/op", Ratio: "warm/ecdsa"}
	benchcpu.Alternate(b, metrics, func() {
		if _, err := v.Verify(context.Background(), ev, opts); err != nil {
			b.Fatal(err)
		}
	}, func() {
		digest := sha512.Sum384(data[:signedSize])
		if !ecdsaVerify(leaf, digest[:], sigR, sigS) {
			b.Fatal("signature does not verify")
		}
	})
}
