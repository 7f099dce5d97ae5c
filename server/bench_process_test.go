package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/tee/snp"
)

// The environment of the guest process that BenchmarkRoundTripService
// starts. TestRoundTripClientProcess runs only when guestEnvURL is set.
const (
	guestEnvURL         = "CLOISTER_BENCH_GUEST_URL"
	guestEnvRoundTrips  = "CLOISTER_BENCH_GUEST_ROUND_TRIPS"
	guestEnvParallelism = "CLOISTER_BENCH_GUEST_PARALLELISM"
	guestEnvEmulator    = "CLOISTER_BENCH_GUEST_EMULATOR"
)

// The guest process prints guestReadyLine on standard output after its
// warm-up and starts the measured round trips when it reads guestStartLine
// on standard input.
const (
	guestReadyLine = "guest process ready"
	guestStartLine = "start"
)

// BenchmarkRoundTripService measures the same round trips as
// BenchmarkRoundTrip, with the guests in a child process. The process CPU
// time of the benchmark (cpu-ns/op) is then the service's own, because the
// guests' emulated report signatures, TEE keys, JWE decryption and client
// side of HTTP run in the child.
//
// The child is this test binary running TestRoundTripClientProcess with as
// many concurrent guests as BenchmarkRoundTrip runs (8 per GOMAXPROCS).
// Before it reports ready, it loads the saved emulator and runs as many
// warm-up round trips as it has guests. The parent starts the wall clock
// and its CPU clock only after that, does nothing but wait for the child
// in between, and stops them when the child has exited. So ns/op and
// cpu-ns/op cover the b.N measured round trips and the child's exit.
// client-cpu-ns/op is the child's whole CPU time, including its start-up,
// emulator loading and warm-up, which b.N round trips amortise. With
// PostgreSQL, neither metric counts the database server.
//
// verify-cpu-ns/op is the CPU time of one verification of the same kind
// of evidence. This process measures it right before and after the round
// trips, with b.N/2 verifications each time and at least 100.
// ratio-to-verify is cpu-ns/op divided by it, the measure of the service's
// cost target.
func BenchmarkRoundTripService(b *testing.B) {
	for _, be := range backends(b) {
		b.Run(be.name, func(b *testing.B) {
			ts := startService(b, be, serviceOptions{allowEmulated: true})
			dir := filepath.Join(b.TempDir(), "emulator")
			if err := testEmulators(b)["good"].Save(dir); err != nil {
				b.Fatal(err)
			}
			g := startGuestProcess(b, ts.URL, dir, b.N, 8*runtime.GOMAXPROCS(0))
			verifications := max(b.N/2, 100)
			verifyBefore := verifyCPU(b, verifications)

			b.ResetTimer()
			start := cpuTime(b)
			err := g.run()
			serviceCPU := cpuTime(b) - start
			b.StopTimer()

			if err != nil {
				b.Fatalf("guest process: %v\n%s", err, g.output())
			}
			verifyAfter := verifyCPU(b, verifications)
			perRoundTrip := float64(serviceCPU) / float64(b.N)
			perVerification := float64(verifyBefore+verifyAfter) / float64(2*verifications)
			b.ReportMetric(perRoundTrip, "cpu-ns/op")
			b.ReportMetric(perVerification, "verify-cpu-ns/op")
			b.ReportMetric(perRoundTrip/perVerification, "ratio-to-verify")
			clientCPU := g.cmd.ProcessState.UserTime() + g.cmd.ProcessState.SystemTime()
			b.ReportMetric(float64(clientCPU)/float64(b.N), "client-cpu-ns/op")
		})
	}
}

// verifyCPU returns the process CPU time of n verifications of the
// benchmark's SEV-SNP evidence, run as BenchmarkVerifySNP runs them.
// BenchmarkRoundTripService measures it right before and after the round
// trips, so that the ratio of the two costs does not depend on how fast
// the shared machine ran at another moment of the run.
func verifyCPU(b *testing.B, n int) time.Duration {
	b.Helper()
	ev, opts := verificationInput(b)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := cpuTime(b)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := attest.Verify(context.Background(), ev, opts); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return cpuTime(b) - start
}

// guestProcess is a running child process of guests, started by
// startGuestProcess and stopped at its warm-up until run.
type guestProcess struct {
	cmd   *exec.Cmd
	out   *readyWriter
	start io.WriteCloser
	done  chan struct{}
	err   error
}

// startGuestProcess starts this test binary as a process of parallel
// guests that run rounds round trips against the KBS at url with the
// emulator saved in dir, and waits until its warm-up has finished.
func startGuestProcess(b *testing.B, url, dir string, rounds, parallel int) *guestProcess {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.CommandContext(b.Context(), exe, "-test.run=^TestRoundTripClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		guestEnvURL+"="+url,
		guestEnvRoundTrips+"="+strconv.Itoa(rounds),
		guestEnvParallelism+"="+strconv.Itoa(parallel),
		guestEnvEmulator+"="+dir,
	)
	out := &readyWriter{ready: make(chan struct{})}
	cmd.Stdout = out
	cmd.Stderr = out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start guest process %s: %v", exe, err)
	}

	g := &guestProcess{cmd: cmd, out: out, start: stdin, done: make(chan struct{})}
	go func() {
		g.err = cmd.Wait()
		close(g.done)
	}()
	select {
	case <-out.ready:
	case <-g.done:
		b.Fatalf("guest process exited before it was ready: %v\n%s", g.err, out.String())
	}
	return g
}

// run lets the guest process start its measured round trips and waits
// until it exits.
func (g *guestProcess) run() error {
	_, err := fmt.Fprintln(g.start, guestStartLine)
	g.start.Close()
	<-g.done
	if g.err != nil {
		return g.err
	}
	return err
}

// output returns what the guest process has written to standard output
// and standard error.
func (g *guestProcess) output() string {
	return g.out.String()
}

// readyWriter collects the output of the guest process and closes ready
// when guestReadyLine appears in it.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen && bytes.Contains(w.buf.Bytes(), []byte(guestReadyLine+"\n")) {
		w.seen = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestRoundTripClientProcess is the guest process of
// BenchmarkRoundTripService, which sets its environment. It runs as many
// warm-up round trips as it has guests, prints guestReadyLine, waits for
// guestStartLine on standard input and then runs the requested round
// trips, failing on the first error.
func TestRoundTripClientProcess(t *testing.T) {
	url := os.Getenv(guestEnvURL)
	if url == "" {
		t.Skip(guestEnvURL + " is not set: this test is the guest process that BenchmarkRoundTripService starts")
	}
	rounds := guestEnvInt(t, guestEnvRoundTrips, 0)
	parallel := guestEnvInt(t, guestEnvParallelism, 1)
	dir := os.Getenv(guestEnvEmulator)
	em, err := snp.LoadEmulator(dir)
	if err != nil {
		t.Fatalf("load the emulator named by %s: %v", guestEnvEmulator, err)
	}

	// One transport for all guests, as in BenchmarkRoundTrip, that keeps
	// one idle connection per guest, so that every round trip reuses a
	// kept-alive connection.
	transport := &http.Transport{MaxIdleConnsPerHost: parallel}
	defer transport.CloseIdleConnections()
	clients := make([]*kbs.Client, parallel)
	for i := range clients {
		clients[i] = newKBSClient(url, transport, em)
	}

	ctx := t.Context()
	if err := runRoundTrips(ctx, clients, parallel); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	fmt.Println(guestReadyLine)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil || line != guestStartLine+"\n" {
		t.Fatalf("read %q from standard input (%v), expected %q", line, err, guestStartLine)
	}

	if err := runRoundTrips(ctx, clients, rounds); err != nil {
		t.Fatal(err)
	}
}

// guestEnvInt returns the integer in the environment variable name and
// fails the test when it is missing, invalid or less than minimum.
func guestEnvInt(t *testing.T, name string, minimum int) int {
	t.Helper()
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil || v < minimum {
		t.Fatalf("%s=%q: expected an integer of at least %d", name, os.Getenv(name), minimum)
	}
	return v
}

// runRoundTrips runs n round trips, each client in a goroutine of its own
// taking the next one until n have started, and returns the first error.
// The first error cancels the round trips in flight, so the other
// goroutines stop with context.Canceled, which the first error hides.
func runRoundTrips(ctx context.Context, clients []*kbs.Client, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for _, c := range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := roundTrip(ctx, c); err != nil {
					errOnce.Do(func() { firstErr = err })
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
