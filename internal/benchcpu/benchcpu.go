// Package benchcpu measures benchmark operations in CPU time instead of
// wall time. On a machine shared with other work, other processes take the
// CPU at random moments, which makes wall time per operation vary far more
// than the CPU time the operation itself uses.
//
// Loop reports the CPU time of the whole process per operation, which
// includes garbage collection on other threads. Alternate runs two
// operations in turn on one locked OS thread and reports the thread CPU
// time of each and their ratio, which leaves out garbage collection on
// other threads but keeps both sides under the same machine load.
package benchcpu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// ProcessTime returns the user and system CPU time of this process.
func ProcessTime(b testing.TB) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ThreadTime returns the CPU time of the calling OS thread
// (CLOCK_THREAD_CPUTIME_ID).
func ThreadTime(b testing.TB) time.Duration {
	b.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// Loop runs op in b.Loop and reports the process CPU time per operation
// as cpu-ns/op.
func Loop(b *testing.B, op func()) {
	b.Helper()
	start := ProcessTime(b)
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(ProcessTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// Metrics names the three metrics that Alternate reports.
type Metrics struct {
	// Measured and Baseline are the units of the thread CPU time per
	// operation of each side, such as "verify-cpu-ns/op".
	Measured, Baseline string
	// Ratio is the unit of the measured time divided by the baseline time.
	Ratio string
}

// Alternate runs measured and then baseline in every iteration of b.Loop,
// on one locked OS thread, and reports the thread CPU time per operation of
// each and their ratio under the names in m.
func Alternate(b *testing.B, m Metrics, measured, baseline func()) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var measuredTime, baselineTime time.Duration
	for b.Loop() {
		start := ThreadTime(b)
		measured()
		mid := ThreadTime(b)
		baseline()
		end := ThreadTime(b)
		measuredTime += mid - start
		baselineTime += end - mid
	}
	n := float64(b.N)
	b.ReportMetric(float64(measuredTime)/n, m.Measured)
	b.ReportMetric(float64(baselineTime)/n, m.Baseline)
	b.ReportMetric(float64(measuredTime)/float64(baselineTime), m.Ratio)
}

// BareECDSA reports the process CPU time of one ECDSA verification of
// digest with a fresh key on curve, as cpu-ns/op. It is the floor that a
// verifier checking one such signature cannot go below.
func BareECDSA(b *testing.B, curve elliptic.Curve, digest []byte) {
	b.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest)
	if err != nil {
		b.Fatal(err)
	}
	Loop(b, func() {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest, sig) {
			b.Fatal("signature does not verify")
		}
	})
}

// Verify reports the process CPU time per verification of ev by v with
// opts, as Loop does. It verifies once before the loop, so that the loop
// measures a verifier whose caches are filled and a failure stops the
// benchmark before any timing. Every verification must succeed.
func Verify(b *testing.B, v attest.Verifier, ev attest.Evidence, opts attest.Options) {
	b.Helper()
	ctx := context.Background()
	if _, err := v.Verify(ctx, ev, opts); err != nil {
		b.Fatal(err)
	}
	Loop(b, func() {
		if _, err := v.Verify(ctx, ev, opts); err != nil {
			b.Fatal(err)
		}
	})
}

// VerifyCases runs Verify as a sub-benchmark named after each corpus case,
// with v, the case's evidence and the case's options.
func VerifyCases(b *testing.B, v attest.Verifier, cases []corpus.Case) {
	b.Helper()
	for _, c := range cases {
		ev, opts := attest.Evidence{Data: c.EvidenceBytes(b)}, c.Options(b)
		b.Run(c.Name, func(b *testing.B) {
			Verify(b, v, ev, opts)
		})
	}
}
