package kbs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/store"
)

// budgetTestLimit is the body size limit and the body budget of the
// servers in these tests, so that one body of the limit fills the budget.
const budgetTestLimit = 1024

// openTestStore opens an SQLite store in a temporary directory.
func openTestStore(t *testing.T) store.Store {
	t.Helper()
	rawKey := make([]byte, store.MasterKeySize)
	rand.Read(rawKey)
	key, err := store.NewMasterKey(rawKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir(), MasterKey: key,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newBudgetServer returns a KBS server on loopback whose body budget fits
// one body of budgetTestLimit bytes, and whose requests end after timeout.
func newBudgetServer(t *testing.T, timeout time.Duration) (*Server, *httptest.Server) {
	t.Helper()
	s := &Server{Store: openTestStore(t), MaxBodySize: budgetTestLimit, BodyBudget: budgetTestLimit,
		Logger: slog.New(slog.DiscardHandler)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		s.ServeHTTP(w, r.WithContext(ctx))
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	s.bodies.init(s.BodyBudget, budgetTestLimit)
	return s, srv
}

// fillBudget takes the whole body budget of s, as the bodies of requests
// whose handlers still run would, until the returned function gives it
// back.
func fillBudget(t *testing.T, s *Server) func() {
	t.Helper()
	if !s.bodies.sem.TryAcquire(s.bodies.size) {
		t.Fatal("the body budget is not free")
	}
	var once sync.Once
	release := func() { once.Do(func() { s.bodies.sem.Release(s.bodies.size) }) }
	t.Cleanup(release)
	return release
}

// authBody returns a valid /auth body padded with spaces to size bytes.
func authBody(t *testing.T, size int) []byte {
	t.Helper()
	body, err := json.Marshal(newRequest("snp"))
	if err != nil {
		t.Fatal(err)
	}
	return append(body, bytes.Repeat([]byte(" "), size-len(body))...)
}

// stallBody sends the headers of an /auth request with a body of
// budgetTestLimit bytes and the first 10 bytes of that body. It returns
// the connection and the rest of the body.
func stallBody(t *testing.T, srv *httptest.Server) (net.Conn, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := authBody(t, budgetTestLimit)
	head := "POST /kbs/v0/auth HTTP/1.1\r\nHost: kbs\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body[:10]); err != nil {
		t.Fatal(err)
	}
	return conn, body[10:]
}

// postAuth posts body to the /auth endpoint of the server at url and
// returns the response status and body.
func postAuth(client *http.Client, url string, body []byte) (int, []byte, error) {
	resp, err := client.Post(url+"/kbs/v0/auth", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// A request whose body does not fit in the budget waits until the bodies
// that fill it are given back, and then succeeds.
func TestBodyBudgetWaitsForRoom(t *testing.T) {
	s, srv := newBudgetServer(t, time.Minute)
	release := fillBudget(t, s)

	type result struct {
		status int
		err    error
	}
	body := authBody(t, 200)
	done := make(chan result, 1)
	go func() {
		status, _, err := postAuth(srv.Client(), srv.URL, body)
		done <- result{status, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("request finished while the budget was full: status %d, error %v", r.status, r.err)
	case <-time.After(200 * time.Millisecond):
	}

	release()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.status != http.StatusOK {
			t.Errorf("status %d after the budget was given back, want 200", r.status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request still waits after the budget was given back")
	}
}

// A client that declares a body of the whole budget and stalls after a
// few bytes takes room only for those bytes, so other requests go on.
func TestBodyBudgetStalledBodyTakesSentBytes(t *testing.T) {
	s, srv := newBudgetServer(t, time.Minute)
	conn, rest := stallBody(t, srv)

	status, raw, err := postAuth(srv.Client(), srv.URL, authBody(t, budgetTestLimit-100))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK {
		t.Errorf("request beside a stalled body: status %d, want 200: %s", status, raw)
	}

	if _, err := conn.Write(rest); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stalled request once its body arrived: status %d, want 200", resp.StatusCode)
	}
	if !s.bodies.sem.TryAcquire(s.bodies.size) {
		t.Error("room of finished requests was not given back")
	}
}

// A request that finds no room before its deadline gets AttestationError,
// whose detail names the budget and the fix.
func TestBodyBudgetTimeout(t *testing.T) {
	s, srv := newBudgetServer(t, 100*time.Millisecond)
	fillBudget(t, s)

	status, raw, err := postAuth(srv.Client(), srv.URL, authBody(t, 200))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProblem(status, raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Variant() != ProblemAttestationError {
		t.Errorf("problem type = %q, want %s", p.Type, ProblemAttestationError)
	}
	for _, want := range []string{"bytes of the request body read so far", "budget of 1024 bytes", "Retry later"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail %q does not contain %q", p.Detail, want)
		}
	}
}

// A budget below the body size limit is raised to the limit, so that a
// body of the limit can still be read.
func TestBodyBudgetRaisedToLimit(t *testing.T) {
	s := &Server{Store: openTestStore(t), MaxBodySize: budgetTestLimit, BodyBudget: 10, Logger: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(s)
	defer srv.Close()

	status, raw, err := postAuth(srv.Client(), srv.URL, authBody(t, budgetTestLimit))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK {
		t.Errorf("status %d, want 200: %s", status, raw)
	}
	if s.bodies.size != budgetTestLimit {
		t.Errorf("budget = %d bytes, want the limit, %d", s.bodies.size, budgetTestLimit)
	}
}

// A request that declares a body over the limit is rejected as too large
// at once, even while the budget is full, instead of waiting for room
// that it could not use.
func TestBodyBudgetOversizeRejectedAtOnce(t *testing.T) {
	s, srv := newBudgetServer(t, 2*time.Second)
	fillBudget(t, s)

	start := time.Now()
	status, raw, err := postAuth(srv.Client(), srv.URL, authBody(t, budgetTestLimit+1))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProblem(status, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Detail, "exceeds the limit of 1024 bytes") {
		t.Errorf("detail %q does not name the body size limit", p.Detail)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("rejection took %v; it waited for room in the full budget", d)
	}
}
