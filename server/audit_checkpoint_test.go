package server

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/store"
)

// testCheckpointInterval is the checkpoint interval of the loopback tests.
const testCheckpointInterval = 100 * time.Millisecond

// checkpointLines returns the "audit checkpoint" lines of logs.
func checkpointLines(t *testing.T, logs *logBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range logs.lines(t) {
		if line["msg"] == "audit checkpoint" {
			out = append(out, line)
		}
	}
	return out
}

// waitForCheckpoint returns the first "audit checkpoint" line with trigger
// and the sequence number seq.
func waitForCheckpoint(t *testing.T, logs *logBuffer, trigger string, seq int64) map[string]any {
	t.Helper()
	deadline := time.Now().Add(deadlineBound)
	for {
		for _, line := range checkpointLines(t, logs) {
			if line["trigger"] == trigger && line["seq"] == float64(seq) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit checkpoint line with trigger %q and seq %d in:\n%s", trigger, seq, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantCheckpointHead checks that line names head.
func wantCheckpointHead(t *testing.T, line map[string]any, head store.AuditHead) {
	t.Helper()
	if line["seq"] != float64(head.Seq) {
		t.Errorf("audit checkpoint seq %v, want %d", line["seq"], head.Seq)
	}
	if want := hex.EncodeToString(head.Hash); line["hash"] != want {
		t.Errorf("audit checkpoint hash %v, want %s", line["hash"], want)
	}
	if line["level"] != "INFO" {
		t.Errorf("audit checkpoint level %v, want INFO", line["level"])
	}
}

// serveLogged runs a replica of ts with cfg changed by change on a loopback
// listener, logging to the returned buffer, and returns its address and a
// function that stops it and waits for Serve to return.
func serveLogged(t *testing.T, ts *testService, change func(*Config)) (addr string, logs *logBuffer, stop func()) {
	t.Helper()
	logs = &logBuffer{}
	cfg := ts.config
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	change(&cfg)
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, "", "") }()

	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve after shutdown: %v", err)
			}
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Fatal("Serve did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return ln.Addr().String(), logs, stop
}

// Serve logs the audit chain head at start, once per interval in which it
// moved, and at shutdown, and logs no line while it stays.
func TestServeLogsAuditCheckpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		if _, err := ts.store.AppendAudit(ctx, store.AuditRecord{Action: store.AuditDeny, Reason: "before start"}); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		startHead, err := ts.store.AuditHead(ctx)
		if err != nil {
			t.Fatalf("AuditHead: %v", err)
		}

		addr, logs, stop := serveLogged(t, ts, func(c *Config) { c.AuditCheckpointInterval = testCheckpointInterval })
		line := waitForCheckpoint(t, logs, checkpointAtStart, startHead.Seq)
		wantCheckpointHead(t, line, startHead)

		// The head stays, so the intervals log nothing.
		time.Sleep(5 * testCheckpointInterval)
		if n := len(checkpointLines(t, logs)); n != 1 {
			t.Errorf("%d audit checkpoint lines while the head stayed, want only the start line:\n%s", n, logs.String())
		}

		// A release appends attest and release records, and the next
		// interval logs the new head once.
		client := newKBSClient("http://"+addr, http.DefaultTransport, testEmulators(t)["good"])
		if _, err := client.Resource(ctx, testSecretPath); err != nil {
			t.Fatalf("release %s: %v", testSecretPath, err)
		}
		movedHead, err := ts.store.AuditHead(ctx)
		if err != nil {
			t.Fatalf("AuditHead: %v", err)
		}
		if movedHead.Seq <= startHead.Seq {
			t.Fatalf("release moved the audit chain head from %d to %d, want forward", startHead.Seq, movedHead.Seq)
		}
		line = waitForCheckpoint(t, logs, checkpointAtInterval, movedHead.Seq)
		wantCheckpointHead(t, line, movedHead)

		// An interval between the two appends may have logged the head
		// after the first, but once the head stays no line follows.
		moved := len(checkpointLines(t, logs))
		if moved > 3 {
			t.Errorf("%d audit checkpoint lines after two appends, want the start line and at most two interval lines:\n%s", moved, logs.String())
		}
		time.Sleep(5 * testCheckpointInterval)
		if n := len(checkpointLines(t, logs)); n != moved {
			t.Errorf("%d audit checkpoint lines while the moved head stayed, want %d:\n%s", n, moved, logs.String())
		}

		stop()
		line = waitForCheckpoint(t, logs, checkpointAtShutdown, movedHead.Seq)
		wantCheckpointHead(t, line, movedHead)
		if n := len(checkpointLines(t, logs)); n != moved+1 {
			t.Errorf("%d audit checkpoint lines after shutdown, want %d:\n%s", n, moved+1, logs.String())
		}
		if strings.Contains(logs.String(), string(testSecret)) {
			t.Errorf("the log contains the released secret:\n%s", logs.String())
		}
	})
}

// A negative interval disables the checkpoint lines, at start and at
// shutdown too.
func TestServeAuditCheckpointsDisabled(t *testing.T) {
	ctx := context.Background()
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	if _, err := ts.store.AppendAudit(ctx, store.AuditRecord{Action: store.AuditDeny, Reason: "before start"}); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	_, logs, stop := serveLogged(t, ts, func(c *Config) { c.AuditCheckpointInterval = -1 })
	time.Sleep(3 * testCheckpointInterval)
	stop()
	if !strings.Contains(logs.String(), "cloister service stopped") {
		t.Fatalf("no stop line in:\n%s", logs.String())
	}
	if n := len(checkpointLines(t, logs)); n != 0 {
		t.Errorf("%d audit checkpoint lines with checkpoints disabled, want none:\n%s", n, logs.String())
	}
}

// An empty chain has no record for a checkpoint to name, so Serve logs no
// line until the first record.
func TestServeAuditCheckpointEmptyChain(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	head, err := ts.store.AuditHead(context.Background())
	if err != nil {
		t.Fatalf("AuditHead: %v", err)
	}
	if head.Seq != 0 {
		t.Skipf("the test service starts with %d audit records", head.Seq)
	}
	_, logs, stop := serveLogged(t, ts, func(c *Config) { c.AuditCheckpointInterval = testCheckpointInterval })
	time.Sleep(3 * testCheckpointInterval)
	stop()
	if n := len(checkpointLines(t, logs)); n != 0 {
		t.Errorf("%d audit checkpoint lines for an empty chain, want none:\n%s", n, logs.String())
	}
}

// headStore is a store.Store whose AuditHead returns head.
type headStore struct {
	store.Store
	head store.AuditHead
}

func (s *headStore) AuditHead(context.Context) (store.AuditHead, error) { return s.head, nil }

// A head behind the last checkpoint, or one that changed its hash without
// new records, is logged with an error line, because appends only move the
// head forward.
func TestAuditCheckpointHeadMovedBack(t *testing.T) {
	hash := func(b byte) store.HexBytes { return store.HexBytes(strings.Repeat(string([]byte{b}), 32)) }
	tests := []struct {
		name      string
		next      store.AuditHead
		wantError bool
	}{
		{name: "forward", next: store.AuditHead{Seq: 11, Hash: hash(2)}},
		{name: "back", next: store.AuditHead{Seq: 9, Hash: hash(2)}, wantError: true},
		{name: "same seq, other hash", next: store.AuditHead{Seq: 10, Hash: hash(2)}, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			st := &headStore{head: store.AuditHead{Seq: 10, Hash: hash(1)}}
			c := &auditCheckpointer{store: st, log: slog.New(slog.NewJSONHandler(logs, nil)), interval: time.Hour}
			c.check(context.Background(), checkpointAtStart, false)
			st.head = tt.next
			c.check(context.Background(), checkpointAtInterval, false)

			var errorLines int
			for _, line := range logs.lines(t) {
				if line["level"] == "ERROR" {
					errorLines++
					if line["checkpoint_seq"] != float64(10) {
						t.Errorf("error line checkpoint_seq %v, want 10", line["checkpoint_seq"])
					}
				}
			}
			if tt.wantError && errorLines != 1 {
				t.Errorf("%d error lines, want 1:\n%s", errorLines, logs.String())
			}
			if !tt.wantError && errorLines != 0 {
				t.Errorf("%d error lines, want none:\n%s", errorLines, logs.String())
			}
			lines := checkpointLines(t, logs)
			if len(lines) != 2 {
				t.Fatalf("%d audit checkpoint lines, want 2:\n%s", len(lines), logs.String())
			}
			wantCheckpointHead(t, lines[1], tt.next)
		})
	}
}

// lateHeadStore is a store.Store whose AuditHead returns the head only
// some time after its context ended, as a read that completes while the
// service stops does.
type lateHeadStore struct {
	store.Store
}

func (s lateHeadStore) AuditHead(ctx context.Context) (store.AuditHead, error) {
	<-ctx.Done()
	time.Sleep(testCheckpointInterval)
	return s.Store.AuditHead(context.WithoutCancel(ctx))
}

// Serve on a listener that fails returns its error only after the
// checkpoint goroutine ended, so that no line follows the return.
func TestServeFailedListenerStopsCheckpoints(t *testing.T) {
	ctx := context.Background()
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	if _, err := ts.store.AppendAudit(ctx, store.AuditRecord{Action: store.AuditDeny, Reason: "before start"}); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	logs := &logBuffer{}
	cfg := ts.config
	cfg.Store = lateHeadStore{Store: ts.store}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	cfg.AuditCheckpointInterval = testCheckpointInterval
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()

	if err := srv.Serve(ctx, ln, "", ""); err == nil {
		t.Fatal("Serve on a closed listener returned no error")
	}
	returned := logs.String()
	time.Sleep(3 * testCheckpointInterval)
	if after := logs.String(); after != returned {
		t.Errorf("log lines after Serve returned:\n%s", strings.TrimPrefix(after, returned))
	}
}
