package psa

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// BenchmarkVerify measures full verifications of each accepted corpus
// token under its IAK from the case's collateral, as the CLI passes it, and
// the bare ECDSA P-256 verification of a SHA-256 digest as the floor.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for _, c := range corpus.Cases(b, "psa") {
		if c.Expect.DefaultVerdict != "accept" {
			continue
		}
		data := c.EvidenceBytes(b)
		opts := attest.Options{Collateral: c.Collateral(b)}
		b.Run(c.Name, func(b *testing.B) {
			start := cpuTime(b)
			for b.Loop() {
				if _, err := (Verifier{}).Verify(ctx, attest.Evidence{Data: data}, opts); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
	b.Run("bare-es256", func(b *testing.B) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		digest := sha256.Sum256([]byte("PSA token"))
		sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil {
			b.Fatal(err)
		}
		start := cpuTime(b)
		for b.Loop() {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				b.Fatal("signature does not verify")
			}
		}
		reportCPU(b, start)
	})
}

// cpuTime returns the user and system CPU time of this process, which
// varies far less than wall time on a machine shared with other work.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start as cpu-ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}
