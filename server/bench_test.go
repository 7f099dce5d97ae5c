package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/kbs"
)

// BenchmarkVerifySNP measures the SEV-SNP verifier alone on the evidence
// the round-trip benchmark sends, with the same trust anchor, as the
// baseline of the service's cost.
func BenchmarkVerifySNP(b *testing.B) {
	ev, opts := verificationInput(b)
	b.ResetTimer()
	start := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := attest.Verify(context.Background(), ev, opts); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCPU(b, start)
}

// verificationInput returns emulated SEV-SNP evidence as the round-trip
// benchmarks send it, and the options that verify it against the
// emulator's development root.
func verificationInput(b *testing.B) (attest.Evidence, attest.Options) {
	b.Helper()
	em := testEmulators(b)["good"]
	ev, err := em.Attest(context.Background(), make([]byte, 48))
	if err != nil {
		b.Fatal(err)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulator", Raw: em.Root().Raw, Certificate: em.Root()})
	return *ev, attest.Options{TrustAnchors: anchors}
}

// BenchmarkRoundTrip measures complete attest-and-release round trips
// over loopback HTTP with kept-alive connections: /auth, /attest with
// fresh emulated SEV-SNP evidence and a fresh TEE key, and a resource
// request whose JWE the client decrypts. Every audit record is committed
// durably before the response. Parallel clients let group commit batch
// the audit appends.
func BenchmarkRoundTrip(b *testing.B) {
	for _, be := range backends(b) {
		b.Run(be.name, func(b *testing.B) {
			ts := startService(b, be, serviceOptions{allowEmulated: true})
			b.SetParallelism(8)
			// http.Transport keeps two idle connections per host by
			// default; one per client keeps every connection alive.
			transport := &http.Transport{MaxIdleConnsPerHost: 8 * runtime.GOMAXPROCS(0)}
			defer transport.CloseIdleConnections()
			em := testEmulators(b)["good"]
			b.ResetTimer()
			start := cpuTime(b)
			defer reportCPU(b, start)
			b.RunParallel(func(pb *testing.PB) {
				c := newKBSClient(ts.URL, transport, em)
				ctx := context.Background()
				for pb.Next() {
					if err := roundTrip(ctx, c); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// roundTrip runs what one guest does in the round-trip benchmarks: auth
// and attest with a fresh TEE key, then the resource request, whose
// secret it checks.
func roundTrip(ctx context.Context, c *kbs.Client) error {
	if _, err := c.Attest(ctx); err != nil {
		return err
	}
	secret, err := c.Resource(ctx, testSecretPath)
	if err != nil {
		return err
	}
	if !bytes.Equal(secret, testSecret) {
		return fmt.Errorf("resource %s: the decrypted secret (%d bytes) differs from the stored one (%d bytes)", testSecretPath, len(secret), len(testSecret))
	}
	return nil
}

// cpuTime returns the user and system CPU time of this process. The
// machine the benchmarks run on is shared, so wall time per operation
// varies with other load while CPU time per operation does not.
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
