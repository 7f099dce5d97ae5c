package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// testRequestTimeout is the request deadline of the services in these
// tests.
const testRequestTimeout = 200 * time.Millisecond

// deadlineBound is the time within which a request that stalls must end.
// It is far above testRequestTimeout, for a loaded machine, and far below
// DefaultRequestTimeout.
const deadlineBound = 10 * time.Second

// errStallNotEnded is the error of a stall that no deadline ended within
// deadlineBound, so that a missing deadline fails the test instead of
// hanging it.
var errStallNotEnded = errors.New("stall timed out before the request's context ended")

// stall blocks until ctx ends, as a query on an overloaded database or a
// collateral fetch that keeps retrying does, and reports the error it
// returns on ended. It gives up after deadlineBound.
func stall(ctx context.Context, ended chan<- error) error {
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(deadlineBound):
		err = errStallNotEnded
	}
	select {
	case ended <- err:
	default:
	}
	return err
}

// stallingAppraiser is an Appraiser that blocks until the request's context
// ends.
type stallingAppraiser struct{ ended chan error }

func (a stallingAppraiser) Appraise(ctx context.Context, tee string, ev attest.Evidence) (*kbs.Verdict, error) {
	return nil, fmt.Errorf("fetch collateral for %s evidence: %w", tee, stall(ctx, a.ended))
}

// stallingStore is a Store whose method named stall blocks until the
// request's context ends. The other methods call the wrapped Store.
type stallingStore struct {
	store.Store
	stall string
	ended chan error
}

func (s stallingStore) GetSealedSecret(ctx context.Context, path string) (*store.SealedSecret, error) {
	if s.stall == "GetSealedSecret" {
		return nil, stall(ctx, s.ended)
	}
	return s.Store.GetSealedSecret(ctx, path)
}

func (s stallingStore) GetSession(ctx context.Context, id string) (*store.Session, error) {
	if s.stall == "GetSession" {
		return nil, stall(ctx, s.ended)
	}
	return s.Store.GetSession(ctx, id)
}

func (s stallingStore) ListSecrets(ctx context.Context, prefix string) ([]store.SecretInfo, error) {
	if s.stall == "ListSecrets" {
		return nil, stall(ctx, s.ended)
	}
	return s.Store.ListSecrets(ctx, prefix)
}

// startWithDeadline starts a replica of ts with a request deadline of
// testRequestTimeout and a log at debug level. change, if not nil, edits
// the Config first.
func startWithDeadline(t *testing.T, ts *testService, change func(*Config)) (*testService, *logBuffer) {
	t.Helper()
	return startLogged(t, ts, func(cfg *Config) {
		cfg.RequestTimeout = testRequestTimeout
		if change != nil {
			change(cfg)
		}
	})
}

// wantEndedAtDeadline checks that the stall ended because the request's
// deadline passed, within deadlineBound of start.
func wantEndedAtDeadline(t *testing.T, ended <-chan error, start time.Time) {
	t.Helper()
	select {
	case err := <-ended:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("stall ended with %v, want %v", err, context.DeadlineExceeded)
		}
	default:
		t.Error("the request never reached the stall")
	}
	if d := time.Since(start); d > deadlineBound {
		t.Errorf("request took %v with a deadline of %v, want at most %v", d, testRequestTimeout, deadlineBound)
	}
}

// wantTimedOutLine checks the log line of a request that reached its
// deadline.
func wantTimedOutLine(t *testing.T, logs *logBuffer, resp *http.Response, route string) {
	t.Helper()
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatal("response has no X-Request-Id")
	}
	line := logs.waitForLine(t, "http request timed out", id)
	if line["route"] != route {
		t.Errorf("route = %v, want %s", line["route"], route)
	}
	if line["status"] != float64(resp.StatusCode) {
		t.Errorf("status = %v, want %d", line["status"], resp.StatusCode)
	}
	if line["timeout"] != testRequestTimeout.String() {
		t.Errorf("timeout = %v, want %s", line["timeout"], testRequestTimeout)
	}
}

// An appraisal that blocks, as an online collateral fetch that keeps
// retrying does, ends at the deadline with Trustee's /attest error body
// and no token, and the session stays unattested.
func TestDeadlineEndsStalledAttest(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	ended := make(chan error, 1)
	rep, logs := startWithDeadline(t, ts, nil)
	rep.srv.kbs.Appraiser = stallingAppraiser{ended: ended}
	jar, _ := cookiejar.New(nil)

	nonce := auth(t, rep, jar)
	start := time.Now()
	resp := post(t, rep, jar, "/kbs/v0/attest", attestBody(t, nonce))
	body := wantProblemResponse(t, resp, kbs.ProblemAttestationError, http.StatusUnauthorized)

	wantEndedAtDeadline(t, ended, start)
	if strings.Contains(body, "token") {
		t.Errorf("/attest error body contains a token: %s", body)
	}
	if cookie := resp.Header.Get("Set-Cookie"); cookie != "" {
		t.Errorf("/attest error set a cookie: %q", cookie)
	}

	wantTimedOutLine(t, logs, resp, "kbs")
	for _, line := range logs.lines(t) {
		if line["msg"] == "http request timed out" && line["path"] != "/kbs/v0/attest" {
			t.Errorf("request to %v that ended before its deadline was logged as timed out", line["path"])
		}
	}

	attests, err := ts.store.ListAudit(context.Background(), store.AuditQuery{Action: store.AuditAttest})
	if err != nil {
		t.Fatal(err)
	}
	if len(attests) != 0 {
		t.Errorf("audit log has %d attest records after a timed-out /attest, want 0", len(attests))
	}
	wantDenyRecord(t, ts, "")

	// The session can still be attested on a service without the stall.
	good := post(t, ts, jar, "/kbs/v0/attest", attestBody(t, nonce))
	if good.StatusCode != http.StatusOK {
		t.Errorf("/attest on the session after the timeout: %s", good.Status)
	}
}

// A secret read that blocks, as a query on an overloaded database does,
// ends at the deadline with a KBS error body, and no secret is released
// or recorded as released.
func TestDeadlineEndsStalledResource(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	_, token := ts.attestClient(t, "good")
	ended := make(chan error, 1)
	rep, logs := startWithDeadline(t, ts, func(cfg *Config) {
		cfg.Store = stallingStore{Store: cfg.Store, stall: "GetSealedSecret", ended: ended}
	})

	start := time.Now()
	resp := get(t, rep, "/kbs/v0/resource/"+testSecretPath, token)
	body := wantProblemResponse(t, resp, kbs.ProblemPluginInternalError, http.StatusUnauthorized)

	wantEndedAtDeadline(t, ended, start)
	for _, leak := range []string{"ciphertext", "encrypted_key", string(testSecret)} {
		if strings.Contains(body, leak) {
			t.Errorf("resource error body contains %q: %s", leak, body)
		}
	}

	wantTimedOutLine(t, logs, resp, "kbs")
	releases, err := ts.store.ListAudit(context.Background(), store.AuditQuery{Action: store.AuditRelease})
	if err != nil {
		t.Fatal(err)
	}
	if len(releases) != 0 {
		t.Errorf("audit log has %d release records after a timed-out request, want 0", len(releases))
	}
	wantDenyRecord(t, ts, testSecretPath)
}

// wantDenyRecord checks that the audit log has one deny record, for
// resource, even though the request it records reached its deadline.
func wantDenyRecord(t *testing.T, ts *testService, resource string) {
	t.Helper()
	denial := auditRecordOf(t, ts.store, store.AuditDeny)
	if denial.Resource != resource {
		t.Errorf("deny record resource = %q, want %q", denial.Resource, resource)
	}
}

// An admin request whose store query blocks ends at the deadline with a
// problem document.
func TestDeadlineEndsStalledAdmin(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{})
	ended := make(chan error, 1)
	rep, logs := startWithDeadline(t, ts, func(cfg *Config) {
		cfg.Admin = adminForTest(t)(stallingStore{Store: ts.store, stall: "ListSecrets", ended: ended})
	})

	start := time.Now()
	resp := get(t, rep, "/admin/v0/secrets", "test-admin-key-0123456789abcdef")
	wantEndedAtDeadline(t, ended, start)

	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status = %s, want 500", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var p admin.Problem
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("body %q is not a problem document: %v", raw, err)
	}
	if p.Status != http.StatusInternalServerError {
		t.Errorf("problem status = %d, want 500", p.Status)
	}

	line := logs.waitForLine(t, "http request timed out", resp.Header.Get("X-Request-Id"))
	if line["level"] != "ERROR" {
		t.Errorf("log level of a timed-out 500 = %v, want ERROR", line["level"])
	}
	wantTimedOutLine(t, logs, resp, "admin")
}

// /readyz reports the store unreachable when its read blocks until the
// deadline.
func TestDeadlineEndsStalledReadiness(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{})
	ended := make(chan error, 1)
	rep, logs := startWithDeadline(t, ts, func(cfg *Config) {
		cfg.Store = stallingStore{Store: cfg.Store, stall: "GetSession", ended: ended}
	})

	start := time.Now()
	resp := get(t, rep, "/readyz", "")
	wantEndedAtDeadline(t, ended, start)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status = %s, want 503", resp.Status)
	}
	wantTimedOutLine(t, logs, resp, "readyz")
}

// The HTTP server leaves a handler time after its deadline to write its
// error response.
func TestWriteTimeoutExceedsDeadline(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{})
	for _, timeout := range []time.Duration{0, testRequestTimeout, DefaultRequestTimeout, 3 * time.Minute} {
		cfg := ts.config
		cfg.RequestTimeout = timeout
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		deadline := srv.cfg.RequestTimeout
		if timeout == 0 && deadline != DefaultRequestTimeout {
			t.Errorf("RequestTimeout 0: deadline %v, want %v", deadline, DefaultRequestTimeout)
		}
		// A group commit runs up to 30 s past the deadline (kbs
		// txBatchTimeout), and a rejection's audit append up to 5 s more
		// (kbs denyAuditTimeout).
		const minMargin = 35 * time.Second
		if got := srv.writeTimeout(); got < deadline+minMargin {
			t.Errorf("RequestTimeout %v: WriteTimeout %v leaves less than %v after the deadline", timeout, got, minMargin)
		}
	}
}

func TestNegativeRequestTimeout(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{})
	cfg := ts.config
	cfg.RequestTimeout = -time.Second
	_, err := New(cfg)
	if err == nil {
		t.Fatal("New accepted a negative RequestTimeout")
	}
	for _, want := range []string{"RequestTimeout", "-1s", "positive duration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
