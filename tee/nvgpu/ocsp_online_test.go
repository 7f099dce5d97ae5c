package nvgpu

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// onlineOCSPOptions returns g's options with an online source that
// sends its OCSP requests to url. Its cache's clock reads testTime, the
// verification time.
func onlineOCSPOptions(t *testing.T, g *testGPU, url string) attest.Options {
	t.Helper()
	opts := g.options(t)
	fetch := collateral.FetcherOptions{Timeout: time.Second, Retries: 1, Backoff: 10 * time.Millisecond, RequestsPerSecond: 1000, Burst: 100}
	cache := &collateral.Cache{Backend: collateral.DiskBackend{Dir: t.TempDir()}, Now: func() time.Time { return testTime }}
	online := &collateral.Online{Cache: cache, OCSP: collateral.NewOCSP(url, fetch)}
	opts.Collateral = collateral.Sources{opts.Collateral, online}
	return opts
}

func TestOCSPOnlineResponder(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	var requests atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil || req.SerialNumber.Cmp(g.intermediate.SerialNumber) != 0 {
			t.Errorf("request %v (%v), expected one about the GPU intermediate CA only: the leaf needs no response", req, err)
			w.Write(ocsp.MalformedRequestErrorResponse)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(signOCSP(t, g.intermediate, g.root, nil, g.rootKey, goodStatus))
	}))
	defer server.Close()
	opts := onlineOCSPOptions(t, g, server.URL)
	report := g.build(t, g.parts(testNonce(7)))

	for i := range 2 {
		claims, err := verifyHex(t, report, opts)
		if err != nil {
			t.Fatalf("verification %d: %v", i, err)
		}
		if ch := checkOf(t, claims, ocspCheck); ch.Result != attest.CheckPassed {
			t.Fatalf("verification %d: ocsp check %+v, expected passed", i, ch)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests to the responder, expected 1: the second verification must use the cache", n)
	}
}

func TestOCSPOnlineResponderDown(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	defer server.Close()

	claims, err := verifyHex(t, g.build(t, g.parts(testNonce(7))), onlineOCSPOptions(t, g, server.URL))
	if err != nil {
		t.Fatalf("an unreachable OCSP responder failed the verification: %v", err)
	}
	ch := checkOf(t, claims, ocspCheck)
	if ch.Result != attest.CheckNotChecked {
		t.Fatalf("ocsp check %+v, expected not checked", ch)
	}
	for _, want := range []string{"no OCSP response for the GPU intermediate CA", "fetching them failed", "HTTP 503", "--ocsp-url"} {
		if !strings.Contains(ch.Detail, want) {
			t.Errorf("ocsp detail %q does not contain %q", ch.Detail, want)
		}
	}
	if strings.Contains(ch.Detail, "verify with --online") {
		t.Errorf("ocsp detail %q advises --online after an online fetch", ch.Detail)
	}
	if strings.Contains(ch.Detail, "\n") {
		t.Errorf("ocsp detail %q spans lines", ch.Detail)
	}
}

// Each distinct fetch error is listed once, on one line, whether it comes
// from a failed query, whose errors are joined with newlines, or from the
// items that the query did not serve.
func TestOCSPFetchNotes(t *testing.T) {
	refused := "fetching http://127.0.0.1:1/ocsp: connection refused"
	tests := []struct {
		name     string
		set      *collateral.Set
		fetchErr error
		want     string
	}{
		{"nothing failed", &collateral.Set{}, nil, ""},
		{"failed query", &collateral.Set{}, errors.New("collateral: " + refused + "\n" + refused + "\n" + refused), refused},
		{"unserved items", &collateral.Set{Unserved: []string{"ocsp/aa/1: " + refused, "ocsp/bb/2: " + refused, "pcs/tcb: other"}}, nil, refused},
		{"two errors", &collateral.Set{Unserved: []string{"ocsp/aa/1: " + refused, "ocsp/bb/2: HTTP 503"}}, nil, refused + "; HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ocspFetchNotes(tt.set, tt.fetchErr); got != tt.want {
				t.Errorf("ocspFetchNotes = %q, want %q", got, tt.want)
			}
		})
	}
}

// verify --online --at with a past time: the responder returns a response
// produced at the current time, which shows the status then, not at the
// verification time. The check is not checked with both times in its
// detail, unless the response revokes the certificate before the
// verification time or does not verify.
func TestOCSPOnlineVerificationTimeInThePast(t *testing.T) {
	g := newTestGPU(t, testFWID(0xf1), nil)
	other := newTestGPU(t, testFWID(0xf2), nil)
	fetchedNow := goodBetween(30*24*time.Hour, 31*24*time.Hour, false)
	revokedBefore := fetchedNow
	revokedBefore.Status, revokedBefore.RevokedAt, revokedBefore.RevocationReason = ocsp.Revoked, testTime.Add(-time.Hour), ocsp.KeyCompromise

	tests := []struct {
		name     string
		response []byte
		result   attest.CheckResult
		kind     error
		detail   []string
	}{
		{"good now", signOCSP(t, g.intermediate, g.root, nil, g.rootKey, fetchedNow), attest.CheckNotChecked, nil,
			[]string{"the fetched OCSP response http://127.0.0.1:", "is newer than the verification time 2025-06-01T12:00:00Z",
				"its thisUpdate 2025-07-01T12:00:00Z", "pass the OCSP responses that were current at that time"}},
		{"revoked before the verification time", signOCSP(t, g.intermediate, g.root, nil, g.rootKey, revokedBefore), attest.CheckFailed, attest.ErrRevoked,
			[]string{"revoked since 2025-06-01T11:00:00Z"}},
		{"forged", signOCSP(t, g.intermediate, g.root, nil, other.rootKey, fetchedNow), attest.CheckFailed, attest.ErrSignature,
			[]string{"is not signed by its issuer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/ocsp-response")
				w.Write(tt.response)
			}))
			defer server.Close()

			claims, err := verifyHex(t, g.build(t, g.parts(testNonce(7))), onlineOCSPOptions(t, g, server.URL))
			if tt.kind == nil && err != nil {
				t.Fatalf("verification failed: %v", err)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Fatalf("error %v, expected kind %v", err, tt.kind)
			}
			ch := checkOf(t, claims, ocspCheck)
			if ch.Result != tt.result {
				t.Fatalf("ocsp check %+v, expected %s", ch, tt.result)
			}
			for _, want := range tt.detail {
				if !strings.Contains(ch.Detail, want) {
					t.Errorf("ocsp detail %q does not contain %q", ch.Detail, want)
				}
			}
		})
	}
}
