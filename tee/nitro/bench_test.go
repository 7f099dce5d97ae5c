package nitro

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// BenchmarkVerify measures full verifications of a real production
// document with a warm chain cache, and the bare ECDSA P-384 verification
// of a SHA-384 digest as the floor, in one function so that -count
// interleaves them on a busy machine. embedded-root trusts the embedded
// AWS root. collateral-dir passes the root as collateral, as the CLI does,
// so attest.Roots adds a self-signature check of that root.
func BenchmarkVerify(b *testing.B) {
	var c corpus.Case
	for _, cc := range corpus.Cases(b, "nitro") {
		if cc.Expect.DefaultVerdict == "accept" && cc.Expect.Debug != nil && !*cc.Expect.Debug {
			c = cc
			break
		}
	}
	data := c.EvidenceBytes(b)
	ctx := context.Background()
	configs := []struct {
		name string
		opts attest.Options
	}{
		{"embedded-root", attest.Options{At: c.Time(b)}},
		{"collateral-dir", attest.Options{At: c.Time(b), Collateral: c.Collateral(b)}},
	}
	for _, cfg := range configs {
		b.Run(cfg.name, func(b *testing.B) {
			v := &Verifier{}
			if _, err := v.Verify(ctx, attest.Evidence{Data: data}, cfg.opts); err != nil {
				b.Fatal(err)
			}
			start := cpuTime(b)
			for b.Loop() {
				if _, err := v.Verify(ctx, attest.Evidence{Data: data}, cfg.opts); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
	b.Run("bare-es384", benchmarkP384)
}

func benchmarkP384(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha512.Sum384([]byte("attestation document"))
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
}

// cpuTime returns the user and system CPU time of this process. On a
// machine shared with other work, CPU time per operation varies far less
// than wall time.
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
