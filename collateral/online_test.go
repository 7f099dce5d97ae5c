package collateral

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/internal/snpabi"
)

// pcsCase is a corpus folder with a complete set of Intel TDX collateral,
// read in place when the corpus is present.
const pcsCase = "tdx/emr-v4-azure-cmc"

func corpusFile(t testing.TB, rel string) []byte {
	t.Helper()
	dir := os.Getenv("CLOISTER_EVIDENCE_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "evidence")
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("evidence corpus file missing under CI: %v", err)
		}
		t.Skipf("evidence corpus not available (%v); set CLOISTER_EVIDENCE_DIR", err)
	}
	return data
}

// mockPCS serves the corpus case's TCB Info, QE Identity and CRLs under the
// Intel PCS v4 paths, counting requests. Handlers can be replaced per test.
type mockPCS struct {
	server   *httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	override http.HandlerFunc
	// mux serves the corpus files; overrides can fall through to it.
	mux *http.ServeMux
}

func newMockPCS(t *testing.T) *mockPCS {
	t.Helper()
	tcbInfo := corpusFile(t, pcsCase+"/tcb_info.json")
	tcbChain := corpusFile(t, pcsCase+"/tcb_info_issuer_chain.pem")
	qeID := corpusFile(t, pcsCase+"/qe_identity.json")
	qeChain := corpusFile(t, pcsCase+"/qe_identity_issuer_chain.pem")
	pckCRL := corpusFile(t, pcsCase+"/pck_crl.der")
	pckChain := corpusFile(t, pcsCase+"/pck_crl_issuer_chain.pem")
	rootCRL := corpusFile(t, pcsCase+"/root_ca_crl.der")

	m := &mockPCS{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tdx/certification/v4/tcb", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("TCB-Info-Issuer-Chain", url.QueryEscape(string(tcbChain)))
		w.Header().Set("Content-Type", "application/json")
		w.Write(tcbInfo)
	})
	mux.HandleFunc("GET /tdx/certification/v4/qe/identity", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("SGX-Enclave-Identity-Issuer-Chain", url.QueryEscape(string(qeChain)))
		w.Header().Set("Content-Type", "application/json")
		w.Write(qeID)
	})
	mux.HandleFunc("GET /sgx/certification/v4/pckcrl", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("SGX-PCK-CRL-Issuer-Chain", url.QueryEscape(string(pckChain)))
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(pckCRL)
	})
	mux.HandleFunc("GET /IntelSGXRootCA.der", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(rootCRL)
	})
	m.mux = mux
	m.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		m.mu.Lock()
		o := m.override
		m.mu.Unlock()
		if o != nil {
			o(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(m.server.Close)
	return m
}

func (m *mockPCS) setOverride(h http.HandlerFunc) {
	m.mu.Lock()
	m.override = h
	m.mu.Unlock()
}

// clock is a settable time source for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestOnline(t *testing.T, m *mockPCS, clk *clock) *Online {
	t.Helper()
	opts := FetcherOptions{Timeout: 5 * time.Second, Retries: 2, Backoff: 10 * time.Millisecond,
		RequestsPerSecond: 1000, Burst: 100, MaxResponseSize: 1 << 20}
	return &Online{
		Cache: &Cache{Backend: DiskBackend{Dir: t.TempDir()}, Now: clk.Now, MaxAge: 24 * time.Hour, Grace: time.Hour},
		PCS:   NewPCS(m.server.URL, m.server.URL+"/IntelSGXRootCA.der", opts),
	}
}

var tdxQuery = Query{TEE: "tdx", FMSPC: "90c06f000000", PCKCA: "platform"}

// newTDXFixture returns an Online source on m with a clock at the corpus
// case's verification time, the clock, and the TDX query for that time.
func newTDXFixture(t *testing.T, m *mockPCS) (*Online, *clock, Query) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)}
	q := tdxQuery
	q.At = clk.Now()
	return newTestOnline(t, m, clk), clk, q
}

func TestOnlineFetchAndCacheHit(t *testing.T) {
	m := newMockPCS(t)
	o, _, q := newTDXFixture(t, m)

	set, err := o.Collateral(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(set.OfKind(KindTCBInfo)); n != 1 {
		t.Errorf("TCB Info items = %d, want 1", n)
	}
	if n := len(set.OfKind(KindQEIdentity)); n != 1 {
		t.Errorf("QE Identity items = %d, want 1", n)
	}
	if n := len(set.OfKind(KindCRL)); n != 2 {
		t.Errorf("CRL items = %d, want 2", n)
	}
	if n := len(set.Certificates()); n < 3 {
		t.Errorf("issuer chain certificates = %d, want at least 3", n)
	}
	first := m.requests.Load()
	if first != 4 {
		t.Errorf("upstream requests = %d, want 4", first)
	}

	if _, err := o.Collateral(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if got := m.requests.Load(); got != first {
		t.Errorf("second lookup made %d upstream requests, want 0", got-first)
	}
}

func TestOnlineRefreshAfterMaxAge(t *testing.T) {
	m := newMockPCS(t)
	o, clk, q := newTDXFixture(t, m)
	if _, err := o.Collateral(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	before := m.requests.Load()
	clk.advance(25 * time.Hour)
	if _, err := o.Collateral(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if got := m.requests.Load() - before; got != 4 {
		t.Errorf("refresh made %d upstream requests, want 4", got)
	}
}

func TestOnlineUpstreamDown(t *testing.T) {
	m := newMockPCS(t)
	start := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	clk := &clock{now: start}
	o := newTestOnline(t, m, clk)
	q := tdxQuery
	q.At = start
	if _, err := o.Collateral(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	m.setOverride(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) })

	// Fresh cache: served without asking the upstream.
	if _, err := o.Collateral(context.Background(), q); err != nil {
		t.Errorf("fresh cache with upstream down: %v", err)
	}

	// Past the refresh time but within the grace: served stale.
	clk.advance(24*time.Hour + 30*time.Minute)
	if _, err := o.Collateral(context.Background(), q); err != nil {
		t.Errorf("within grace with upstream down: %v", err)
	}

	// Past the grace: the upstream error surfaces.
	clk.advance(time.Hour)
	_, err := o.Collateral(context.Background(), q)
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Status != http.StatusBadGateway {
		t.Errorf("past grace: got %v, want an upstream error with HTTP 502", err)
	}
}

func TestCacheNeverServesPastNextUpdate(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := &Cache{Backend: DiskBackend{Dir: t.TempDir()}, Now: clk.Now}
	next := clk.Now().Add(48 * time.Hour)
	fetches := 0
	ok := func(context.Context) (*Entry, error) {
		fetches++
		return &Entry{URL: "https://example.test/x", Body: []byte("x"), NextUpdate: next}, nil
	}
	down := func(context.Context) (*Entry, error) {
		return nil, &UpstreamError{URL: "https://example.test/x", Status: 503, Err: errors.New("down")}
	}
	if _, err := c.Get(context.Background(), "k", clk.Now(), ok); err != nil {
		t.Fatal(err)
	}
	// A verification time after nextUpdate must not be served from the
	// cache, even while the entry is fresh, and not as stale either.
	if _, err := c.Get(context.Background(), "k", next.Add(time.Second), down); err == nil {
		t.Error("entry served for a verification time after its nextUpdate")
	}
	if fetches != 1 {
		t.Errorf("fetches = %d, want 1", fetches)
	}
}

func TestOnlineRejectsBadResponses(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{name: "corrupt body", want: "not collateral", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("{not json"))
		}},
		{name: "wrong content type", want: "Content-Type", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html></html>"))
		}},
		{name: "oversized body", want: "larger than", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"tcbInfo":"` + strings.Repeat("a", 2<<20) + `"}`))
		}},
		{name: "wrong document", want: "contains no", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"keys":[]}`))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMockPCS(t)
			m.setOverride(tc.handler)
			o, _, q := newTDXFixture(t, m)
			o.PCS.RootCACRLURL = ""
			_, err := o.Collateral(context.Background(), q)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			// Permanent failures are not retried, and nothing is cached.
			if got := m.requests.Load(); got != 3 {
				t.Errorf("upstream requests = %d, want 3 (one per item, no retries)", got)
			}
			entries, _ := o.Cache.Backend.List(context.Background())
			if len(entries) != 0 {
				t.Errorf("cache holds %d entries after failed fetches, want 0", len(entries))
			}
		})
	}
}

func TestOnlineRetryAfter(t *testing.T) {
	m := newMockPCS(t)
	var throttled atomic.Bool
	m.setOverride(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/tcb") && !throttled.Swap(true) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		// The other items are fetched at the same time, so they may
		// arrive before the TCB Info.
		m.mux.ServeHTTP(w, r)
	})
	o, _, q := newTDXFixture(t, m)
	if _, err := o.Collateral(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if !throttled.Load() {
		t.Fatal("the 429 response was never sent")
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	f := newHTTPFetcher(FetcherOptions{Retries: 3, MaxRetryAfter: time.Minute, RequestsPerSecond: 100})
	_, err := f.get(context.Background(), srv.URL)
	if err == nil || !strings.Contains(err.Error(), "retry after 1h0m0s") {
		t.Errorf("error = %v, want the Retry-After limit named", err)
	}
}

func TestCacheSingleFlight(t *testing.T) {
	c := &Cache{Backend: DiskBackend{Dir: t.TempDir()}}
	var calls atomic.Int64
	entered := make(chan struct{})
	release := make(chan struct{})
	fetch := func(context.Context) (*Entry, error) {
		if calls.Add(1) == 1 {
			close(entered)
		}
		<-release
		return &Entry{URL: "https://example.test/item", Body: []byte("item")}, nil
	}

	var wg sync.WaitGroup
	results := make([]error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, results[0] = c.Get(context.Background(), "item", time.Now(), fetch)
	}()
	<-entered
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, results[1] = c.Get(context.Background(), "item", time.Now(), fetch)
	}()

	// Give the second request time to join the first one's flight.
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range results {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("upstream fetches = %d, want 1", got)
	}
}

func TestBundleRoundTrip(t *testing.T) {
	m := newMockPCS(t)
	o, clk, q := newTDXFixture(t, m)
	online, err := o.Collateral(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}

	bundle := t.TempDir()
	manifest, err := ExportBundle(context.Background(), o.Cache.Backend, bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Items) != 4 {
		t.Errorf("bundle items = %d, want 4", len(manifest.Items))
	}

	// The bundle directory works as an offline collateral directory.
	offline, err := LoadPath(bundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Kind{KindTCBInfo, KindQEIdentity, KindCRL} {
		if a, b := len(online.OfKind(k)), len(offline.OfKind(k)); a != b {
			t.Errorf("%s: online %d items, bundle %d", k, a, b)
		}
	}
	// The bundle keeps the intermediate certificates but no root, because
	// roots that an upstream sent must not become a site's trust anchors.
	intermediates := 0
	for _, c := range online.Certificates() {
		if !IsSelfSigned(c) {
			intermediates++
		}
	}
	if n := len(offline.Certificates()); n != intermediates {
		t.Errorf("bundle holds %d certificates, want the %d intermediates", n, intermediates)
	}
	if roots := offline.SelfSigned(); len(roots) != 0 {
		t.Errorf("bundle holds %d self-signed certificates, want none", len(roots))
	}

	// Importing fills another cache so that no upstream is needed.
	imported := DiskBackend{Dir: t.TempDir()}
	if _, err := ImportBundle(context.Background(), bundle, imported); err != nil {
		t.Fatal(err)
	}
	m.setOverride(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "offline", http.StatusBadGateway) })
	o2 := newTestOnline(t, m, clk)
	o2.Cache.Backend = imported
	if _, err := o2.Collateral(context.Background(), q); err != nil {
		t.Errorf("verification from an imported bundle needed the upstream: %v", err)
	}

	// A modified file fails the import.
	first := filepath.Join(bundle, manifest.Items[0].File)
	if err := os.WriteFile(first, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ImportBundle(context.Background(), bundle, DiskBackend{Dir: t.TempDir()}); err == nil ||
		!strings.Contains(err.Error(), "differs from the manifest") {
		t.Errorf("import of a tampered bundle: %v", err)
	}
}

func TestKDSRequests(t *testing.T) {
	k := NewKDS("https://kds.example.test", FetcherOptions{})
	chipID := bytes.Repeat([]byte{0xaa, 0xbb}, snpabi.ChipIDSize/2)
	reqs, err := k.requests(Query{TEE: "snp", Product: "Milan", SigningKey: "VCEK",
		ChipID: chipID, ReportedTCB: 0xd918000000000004})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range reqs {
		keys = append(keys, r.key)
	}
	hwid := hex.EncodeToString(chipID)
	want := "kds/vcek/Milan/cert_chain kds/vcek/Milan/crl kds/vcek/Milan/" + hwid + "/blSPL=4&teeSPL=0&snpSPL=24&ucodeSPL=217"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("keys = %s\nwant   %s", got, want)
	}
	turin := kdsTCB("Turin", 0x1100000000020301)
	if turin != "fmcSPL=1&blSPL=3&teeSPL=2&snpSPL=0&ucodeSPL=17" {
		t.Errorf("Turin TCB parameters = %s", turin)
	}
	vlek, err := k.requests(Query{TEE: "snp", Product: "Genoa", SigningKey: "VLEK", ChipID: chipID})
	if err != nil {
		t.Fatal(err)
	}
	if len(vlek) != 2 || !strings.HasPrefix(vlek[0].key, "kds/vlek/Genoa/") {
		t.Errorf("VLEK requests = %d, first %q", len(vlek), vlek[0].key)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second,
		// Values past the range of time.Duration saturate instead of
		// wrapping to a short or negative delay.
		"9223372037":            math.MaxInt64,
		"99999999999999999999":  math.MaxInt64,
		"-99999999999999999999": 0,
	}
	for in, want := range tests {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestOnlinePartialFailure(t *testing.T) {
	m := newMockPCS(t)
	m.setOverride(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/pckcrl") {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		m.mux.ServeHTTP(w, r)
	})
	o, _, q := newTDXFixture(t, m)

	// The items that could be fetched are served; the failed one is left
	// out and named, so that the verifier reports it as missing.
	set, err := o.Collateral(context.Background(), q)
	if err != nil {
		t.Fatalf("partial failure returned an error: %v", err)
	}
	if n := len(set.OfKind(KindTCBInfo)); n != 1 {
		t.Errorf("TCB Info items = %d, want 1", n)
	}
	named := false
	for _, reason := range set.Ignored {
		named = named || strings.Contains(reason, "pcs/pckcrl/platform")
	}
	if !named {
		t.Errorf("Ignored = %q, want the failed PCK CRL named", set.Ignored)
	}
}

// The items of one query are fetched at the same time, so that one slow
// upstream delays a verification by its own timeouts only. The mock holds
// each request until all four TDX items are in flight, or for 5 s at most.
func TestOnlineFetchesItemsConcurrently(t *testing.T) {
	m := newMockPCS(t)
	const items = 4
	var inFlight, maxInFlight atomic.Int64
	allArrived := make(chan struct{})
	var once sync.Once
	m.setOverride(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			seen := maxInFlight.Load()
			if n <= seen || maxInFlight.CompareAndSwap(seen, n) {
				break
			}
		}
		if n == items {
			once.Do(func() { close(allArrived) })
		}
		select {
		case <-allArrived:
		case <-time.After(5 * time.Second):
		}
		m.mux.ServeHTTP(w, r)
	})
	o, _, q := newTDXFixture(t, m)
	if _, err := o.Collateral(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if got := maxInFlight.Load(); got != items {
		t.Errorf("at most %d requests were in flight at once, want all %d items", got, items)
	}
}
