package token

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
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
				start := cpuTime(b)
				for b.Loop() {
					if claims, err := v.Verify(ctx, attest.Evidence{Data: data}, opts); claims == nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, start)
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
		start := cpuTime(b)
		for b.Loop() {
			if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
				b.Fatal(err)
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
