package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/kbs"
)

// shortRetryDelays makes fetchSecret wait milliseconds instead of seconds
// for the length of the test.
func shortRetryDelays(t *testing.T) {
	first, last := firstRetryDelay, maxRetryDelay
	firstRetryDelay, maxRetryDelay = 10*time.Millisecond, 40*time.Millisecond
	t.Cleanup(func() { firstRetryDelay, maxRetryDelay = first, last })
}

// failingSource fails its first len(errs) calls with errs, in order, and
// then returns the secret.
type failingSource struct {
	errs  []error
	calls int
}

func (s *failingSource) Resource(context.Context, string) ([]byte, error) {
	s.calls++
	if s.calls <= len(s.errs) {
		return nil, s.errs[s.calls-1]
	}
	return []byte("secret"), nil
}

func TestFetchSecretRetry(t *testing.T) {
	shortRetryDelays(t)
	unavailable := &kbs.StatusError{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable"}
	denied := kbs.NewProblem(kbs.ProblemPolicyDeny, "Access denied by policy")
	tests := []struct {
		name      string
		errs      []error
		retryFor  time.Duration
		wantCalls int
		wantErr   string
	}{
		{name: "succeeds after transient failures", errs: []error{unavailable, unavailable}, retryFor: time.Minute, wantCalls: 3},
		{name: "denial is not retried", errs: []error{denied}, retryFor: time.Minute, wantCalls: 1, wantErr: "PolicyDeny"},
		{name: "zero retry time tries once", errs: []error{unavailable}, wantCalls: 1, wantErr: "503"},
		{name: "gives up after the retry time", errs: []error{unavailable, unavailable, unavailable, unavailable, unavailable, unavailable, unavailable, unavailable}, retryFor: 50 * time.Millisecond, wantErr: "still failing after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &failingSource{errs: tt.errs}
			value, err := fetchSecret(context.Background(), src, "default/db/password", tt.retryFor, slog.New(slog.DiscardHandler))

			if tt.wantCalls != 0 && src.calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", src.calls, tt.wantCalls)
			}
			if tt.wantErr == "" {
				if err != nil || string(value) != "secret" {
					t.Fatalf("fetchSecret = %q, %v; want the secret", value, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// An agent that starts before its key broker gets the secret once the
// broker listens.
func TestAgentWaitsForKeyBroker(t *testing.T) {
	shortRetryDelays(t)
	e := mustEmulator(t)
	addr := freeLoopbackAddr(t)
	handler := newKeyBroker(t, e, map[string][]byte{"default/db/password": []byte("from-the-broker")})
	jar, _ := cookiejar.New(nil)
	client := &kbs.Client{URL: "http://" + addr, Attester: e, HTTPClient: &http.Client{Jar: jar, Timeout: 10 * time.Second}}

	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen on %s: %v", addr, err)
			return
		}
		ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: handler}}
		ts.Start()
		t.Cleanup(ts.Close)
	}()

	value, err := fetchSecret(t.Context(), client, "default/db/password", time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	<-started
	if err != nil {
		t.Fatalf("fetchSecret: %v", err)
	}
	if string(value) != "from-the-broker" {
		t.Errorf("secret = %q, want %q", value, "from-the-broker")
	}
}

func TestFetchSecretStopsWithContext(t *testing.T) {
	shortRetryDelays(t)
	ctx, cancel := context.WithCancel(context.Background())
	src := &cancellingSource{cancel: cancel}

	_, err := fetchSecret(ctx, src, "default/db/password", time.Minute, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("fetchSecret succeeded, want the last error")
	}
	if src.calls != 1 {
		t.Errorf("calls = %d after cancel, want 1", src.calls)
	}
}

// cancellingSource fails transiently and cancels the fetch's context.
type cancellingSource struct {
	cancel context.CancelFunc
	calls  int
}

func (s *cancellingSource) Resource(context.Context, string) ([]byte, error) {
	s.calls++
	s.cancel()
	return nil, &kbs.StatusError{StatusCode: http.StatusBadGateway, Status: "502 Bad Gateway"}
}

// stallingSource blocks in its first calls, as many as stalls, until their
// context ends, as a key broker that accepts connections and never
// responds does, and then returns the secret.
type stallingSource struct {
	stalls int
	calls  int
}

func (s *stallingSource) Resource(ctx context.Context, _ string) ([]byte, error) {
	s.calls++
	if s.calls <= s.stalls {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return []byte("secret"), nil
}

// A fetch without a response times out and is tried again, so that a
// stalled key broker does not hang the agent.
func TestFetchSecretStalledBroker(t *testing.T) {
	shortRetryDelays(t)
	saved := fetchTimeout
	fetchTimeout = 50 * time.Millisecond
	t.Cleanup(func() { fetchTimeout = saved })

	src := &stallingSource{stalls: 2}
	type result struct {
		value []byte
		err   error
	}
	done := make(chan result, 1)
	go func() {
		value, err := fetchSecret(context.Background(), src, "default/db/password", time.Minute, slog.New(slog.DiscardHandler))
		done <- result{value, err}
	}()
	select {
	case r := <-done:
		if r.err != nil || string(r.value) != "secret" {
			t.Fatalf("fetchSecret = %q, %v; want the secret", r.value, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fetchSecret still waits for a key broker that never responds")
	}
	if src.calls != 3 {
		t.Errorf("calls = %d, want 3", src.calls)
	}

	// Without time to retry, the timeout is the error.
	_, err := fetchSecret(context.Background(), &stallingSource{stalls: 1}, "default/db/password", 0, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "timed out after 50ms") {
		t.Errorf("error %v, want a timeout naming the limit", err)
	}
}
