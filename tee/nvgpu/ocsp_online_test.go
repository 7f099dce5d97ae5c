package nvgpu

import (
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
	for _, want := range []string{"no OCSP response for the GPU intermediate CA", "fetching OCSP responses failed", "HTTP 503"} {
		if !strings.Contains(ch.Detail, want) {
			t.Errorf("ocsp detail %q does not contain %q", ch.Detail, want)
		}
	}
}
