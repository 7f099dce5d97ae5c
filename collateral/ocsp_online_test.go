package collateral

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/internal/testcert"
)

// ocspResponder is an OCSP responder on loopback that replies to POST
// requests about pki.cert with a good response valid for an hour, unless a
// test replaces the handler.
type ocspResponder struct {
	server   *httptest.Server
	pki      *ocspPKI
	requests atomic.Int64
	mu       sync.Mutex
	override http.HandlerFunc
}

func newOCSPResponder(t *testing.T, pki *ocspPKI) *ocspResponder {
	t.Helper()
	r := &ocspResponder{pki: pki}
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		r.mu.Lock()
		override := r.override
		r.mu.Unlock()
		if override != nil {
			override(w, req)
			return
		}
		r.respond(t, w, req)
	}))
	t.Cleanup(r.server.Close)
	return r
}

// respond replies to an RFC 6960 appendix A.1 POST request about pki.cert
// with a good response.
func (r *ocspResponder) respond(t *testing.T, w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/ocsp-request" {
		t.Errorf("request %s with Content-Type %q, expected POST of application/ocsp-request", req.Method, req.Header.Get("Content-Type"))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	parsed, err := ocsp.ParseRequest(body)
	if err != nil {
		t.Errorf("invalid OCSP request: %v", err)
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	if parsed.SerialNumber.Cmp(r.pki.cert.SerialNumber) != 0 || parsed.HashAlgorithm != crypto.SHA384 {
		t.Errorf("request for serial %v with %v, expected serial %v with SHA-384", parsed.SerialNumber, parsed.HashAlgorithm, r.pki.cert.SerialNumber)
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(r.pki.response(t, crypto.SHA384, time.Now().Add(-time.Minute), time.Now().Add(time.Hour)))
}

func (r *ocspResponder) setOverride(h http.HandlerFunc) {
	r.mu.Lock()
	r.override = h
	r.mu.Unlock()
}

// newOCSPOnline returns an Online source that sends every OCSP request to
// url, with short retry delays.
func newOCSPOnline(t *testing.T, url string, timeout time.Duration, retries int) *Online {
	t.Helper()
	opts := FetcherOptions{Timeout: timeout, Retries: retries, Backoff: 10 * time.Millisecond, RequestsPerSecond: 1000, Burst: 100}
	return &Online{Cache: &Cache{Backend: DiskBackend{Dir: t.TempDir()}}, OCSP: NewOCSP(url, opts)}
}

func ocspQuery(p *ocspPKI) Query {
	return Query{TEE: "nvidia-gpu", At: time.Now(), OCSP: []OCSPRequest{{Certificate: p.cert, Issuer: p.ca}}}
}

func TestOnlineOCSPFetchAndCache(t *testing.T) {
	p := newOCSPPKI(t)
	r := newOCSPResponder(t, p)
	o := newOCSPOnline(t, r.server.URL, 5*time.Second, 2)

	for i := range 2 {
		set, err := o.Collateral(context.Background(), ocspQuery(p))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		items := set.OfKind(KindOCSP)
		if len(items) != 1 {
			t.Fatalf("call %d: %d OCSP items, expected 1 (ignored: %v)", i, len(items), set.Ignored)
		}
		if !items[0].Fetched {
			t.Errorf("call %d: fetched OCSP item not marked Fetched", i)
		}
	}
	if n := r.requests.Load(); n != 1 {
		t.Errorf("%d requests to the responder, expected 1: the second call must come from the cache", n)
	}

	entry, err := o.Cache.Backend.Get(context.Background(), OCSPCacheKey(p.cert, p.ca))
	if err != nil || entry == nil {
		t.Fatalf("no cache entry under %s: %v", OCSPCacheKey(p.cert, p.ca), err)
	}
	if until := time.Until(entry.NextUpdate); until < 55*time.Minute || until > time.Hour {
		t.Errorf("cache entry valid for %s, expected the response's nextUpdate about an hour ahead", until)
	}
}

func TestOnlineOCSPRetriesServerError(t *testing.T) {
	p := newOCSPPKI(t)
	r := newOCSPResponder(t, p)
	var failed atomic.Bool
	r.setOverride(func(w http.ResponseWriter, req *http.Request) {
		if failed.CompareAndSwap(false, true) {
			http.Error(w, "unavailable", http.StatusInternalServerError)
			return
		}
		r.respond(t, w, req)
	})
	o := newOCSPOnline(t, r.server.URL, 5*time.Second, 2)

	set, err := o.Collateral(context.Background(), ocspQuery(p))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.OfKind(KindOCSP)) != 1 {
		t.Errorf("no OCSP item after the retry (ignored: %v)", set.Ignored)
	}
	if n := r.requests.Load(); n != 2 {
		t.Errorf("%d requests, expected a failed one and its retry", n)
	}
}

func TestOnlineOCSPTimeoutNamesLastFailure(t *testing.T) {
	p := newOCSPPKI(t)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + listener.Addr().String() + "/"
	listener.Close()
	o := newOCSPOnline(t, closedURL, 200*time.Millisecond, 20)

	_, err = o.Collateral(context.Background(), ocspQuery(p))
	if err == nil {
		t.Fatal("a closed port served a response")
	}
	if !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("error %q, expected it to say that the time ran out", err)
	}
	if !strings.Contains(err.Error(), "dial tcp") {
		t.Errorf("error %q, expected the failure of the last attempt", err)
	}
	if n := strings.Count(err.Error(), closedURL); n != 1 {
		t.Errorf("error %q names the URL %d times, expected once", err, n)
	}
}

func TestOnlineOCSPTimeout(t *testing.T) {
	p := newOCSPPKI(t)
	r := newOCSPResponder(t, p)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	r.setOverride(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	})
	o := newOCSPOnline(t, r.server.URL, 50*time.Millisecond, 1)

	started := time.Now()
	set, err := o.Collateral(context.Background(), ocspQuery(p))
	if err == nil {
		t.Fatal("a responder that never replies served a response")
	}
	if elapsed := time.Since(started); elapsed > 2*time.Second {
		t.Errorf("the request took %s, expected the 50ms timeout once", elapsed)
	}
	if n := r.requests.Load(); n != 1 {
		t.Errorf("%d requests, expected one: the timeout bounds all attempts together", n)
	}
	if len(set.Unserved) != 1 || !strings.HasPrefix(set.Unserved[0], "ocsp/") {
		t.Errorf("unserved %v, expected the OCSP key", set.Unserved)
	}
}

func TestOnlineOCSPRejectsResponses(t *testing.T) {
	p, other := newOCSPPKI(t), newOCSPPKI(t)
	cases := []struct {
		name    string
		handler func(t *testing.T) http.HandlerFunc
		want    string
	}{
		{"tryLater", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/ocsp-response")
				w.Write(ocsp.TryLaterErrorResponse)
			}
		}, "tryLater"},
		{"another certificate", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/ocsp-response")
				w.Write(other.response(t, crypto.SHA384, time.Now(), time.Now().Add(time.Hour)))
			}
		}, "not about certificate"},
		{"several entries, none about the certificate", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/ocsp-response")
				now := time.Now()
				w.Write(testcert.OCSPJoin(t, other.caKey, other.response(t, crypto.SHA384, now, now.Add(time.Hour)),
					other.response(t, crypto.SHA1, now, now.Add(time.Hour))))
			}
		}, "none of its 2 SingleResponses names it"},
		{"wrong content type", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html></html>"))
			}
		}, "unexpected Content-Type"},
		{"oversized", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/ocsp-response")
				w.Write(bytes.Repeat([]byte{0x30}, maxOCSPResponseSize+1))
			}
		}, "larger than 65536 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newOCSPResponder(t, p)
			r.setOverride(c.handler(t))
			o := newOCSPOnline(t, r.server.URL, 5*time.Second, 2)

			for i := range 2 {
				_, err := o.Collateral(context.Background(), ocspQuery(p))
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("call %d: error %v, expected one containing %q", i, err, c.want)
				}
			}
			if n := r.requests.Load(); n != 2 {
				t.Errorf("%d requests for two calls, expected 2: a rejected response is neither retried nor cached", n)
			}
		})
	}
}

func TestOCSPResponderURL(t *testing.T) {
	caKey := testcert.ECDSAKey(t, elliptic.P256())
	ca := testcert.Issue(t, testcert.Template(1, "CA", true, x509.KeyUsageCertSign), nil, &caKey.PublicKey, caKey)
	withAIA := testcert.Template(2, "with AIA", false, x509.KeyUsageDigitalSignature)
	withAIA.OCSPServer = []string{"ldap://ocsp.example.test", "http://ocsp.example.test/"}
	named := testcert.Issue(t, withAIA, ca, &caKey.PublicKey, caKey)
	unnamed := testcert.Issue(t, testcert.Template(3, "without AIA", false, x509.KeyUsageDigitalSignature), ca, &caKey.PublicKey, caKey)

	cases := []struct {
		name     string
		override string
		req      OCSPRequest
		want     string
	}{
		{"certificate's responder", "", OCSPRequest{Certificate: named, Issuer: ca, Responder: "http://issuer.example.test"}, "http://ocsp.example.test/"},
		{"responder above it", "", OCSPRequest{Certificate: unnamed, Issuer: ca, Responder: "http://issuer.example.test"}, "http://issuer.example.test"},
		{"override", "http://127.0.0.1:9/mirror", OCSPRequest{Certificate: named, Issuer: ca}, "http://127.0.0.1:9/mirror"},
		{"none", "", OCSPRequest{Certificate: unnamed, Issuer: ca}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := NewOCSP(c.override, FetcherOptions{}).responder(c.req); got != c.want {
				t.Errorf("responder %q, expected %q", got, c.want)
			}
		})
	}
}

func TestOnlineOCSPWithoutResponder(t *testing.T) {
	p := newOCSPPKI(t)
	o := newOCSPOnline(t, "", 5*time.Second, 2)

	set, err := o.Collateral(context.Background(), ocspQuery(p))
	if err == nil || !strings.Contains(err.Error(), "names no OCSP responder") {
		t.Fatalf("error %v, expected one saying that the certificate names no responder", err)
	}
	if strings.Contains(err.Error(), "fetching :") {
		t.Errorf("error %q names an empty URL, expected no URL when no request was sent", err)
	}
	if len(set.Unserved) != 1 || !strings.Contains(set.Unserved[0], "--ocsp-url") {
		t.Errorf("unserved %v, expected the key with the --ocsp-url fix", set.Unserved)
	}
}
func TestNextUpdateOfOCSP(t *testing.T) {
	p := newOCSPPKI(t)
	thisUpdate := time.Now().Add(-time.Hour).Truncate(time.Second)
	if got := nextUpdateOf(p.response(t, crypto.SHA384, thisUpdate, thisUpdate.Add(3*time.Hour))); !got.Equal(thisUpdate.Add(3 * time.Hour)) {
		t.Errorf("next update %s, expected the response's nextUpdate %s", got, thisUpdate.Add(3*time.Hour))
	}
	if got := nextUpdateOf(p.response(t, crypto.SHA384, thisUpdate, time.Time{})); !got.Equal(thisUpdate.Add(OCSPValidityWithoutNextUpdate)) {
		t.Errorf("next update %s, expected %s after thisUpdate", got, OCSPValidityWithoutNextUpdate)
	}
}

// A response that its issuer did not sign, such as one forged on the
// plain-HTTP path to the responder, must reach the verifier, which rejects
// it. It must not stay in the cache, because a cached forgery would keep
// failing every verification after the responder sends a correct response
// again.
func TestOnlineOCSPForgedResponseNotCached(t *testing.T) {
	p := newOCSPPKI(t)
	forgerKey := testcert.ECDSAKey(t, elliptic.P256())
	forgerTemplate := testcert.Template(9, "forged responder", false, x509.KeyUsageDigitalSignature)
	forgerTemplate.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	forger := testcert.Issue(t, forgerTemplate, nil, &forgerKey.PublicKey, forgerKey)
	forged, err := ocsp.CreateResponse(p.ca, forger, ocsp.Response{Status: ocsp.Good, SerialNumber: p.cert.SerialNumber,
		IssuerHash: crypto.SHA384, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour), Certificate: forger}, forgerKey)
	if err != nil {
		t.Fatal(err)
	}
	r := newOCSPResponder(t, p)
	r.setOverride(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(forged)
	})
	o := newOCSPOnline(t, r.server.URL, 5*time.Second, 2)

	set, err := o.Collateral(context.Background(), ocspQuery(p))
	if err != nil {
		t.Fatal(err)
	}
	items := set.OfKind(KindOCSP)
	if len(items) != 1 {
		t.Fatalf("%d OCSP items, expected 1 (ignored: %v)", len(items), set.Ignored)
	}
	if !bytes.Equal(items[0].Raw, forged) {
		t.Fatal("the OCSP item is not the forged response, which the verifier must see to reject it")
	}
	entry, err := o.Cache.Backend.Get(context.Background(), OCSPCacheKey(p.cert, p.ca))
	if err != nil {
		t.Fatal(err)
	}
	if entry != nil {
		t.Error("the forged response was cached")
	}

	r.setOverride(nil)
	set, err = o.Collateral(context.Background(), ocspQuery(p))
	if err != nil {
		t.Fatal(err)
	}
	items = set.OfKind(KindOCSP)
	if len(items) != 1 {
		t.Fatalf("second call returned %d OCSP items, expected 1", len(items))
	}
	if bytes.Equal(items[0].Raw, forged) {
		t.Errorf("second call returned the forged response, expected the responder's good one")
	}
	if n := r.requests.Load(); n != 2 {
		t.Errorf("%d requests for two calls, expected 2", n)
	}
}

// A fetched response whose SingleResponse about the certificate is not the
// first is served and cached until that SingleResponse's nextUpdate, not
// the earlier one of another certificate's entry.
func TestOnlineOCSPMultipleSingleResponses(t *testing.T) {
	p, other := newOCSPPKI(t), newOCSPPKI(t)
	now := time.Now().Truncate(time.Second)
	otherSoon := other.responseWith(t, ocsp.Response{Status: ocsp.Revoked, RevokedAt: now.Add(-time.Hour),
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(10 * time.Minute)})
	good := p.responseWith(t, ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)})
	joined := testcert.OCSPJoin(t, p.caKey, otherSoon, good)
	r := newOCSPResponder(t, p)
	r.setOverride(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(joined)
	})
	o := newOCSPOnline(t, r.server.URL, 5*time.Second, 2)

	set, err := o.Collateral(context.Background(), ocspQuery(p))
	if err != nil {
		t.Fatal(err)
	}
	items := set.OfKind(KindOCSP)
	if len(items) != 1 {
		t.Fatalf("%d OCSP items, expected 1 (ignored: %v)", len(items), set.Ignored)
	}
	if !bytes.Equal(items[0].Raw, joined) {
		t.Fatal("the OCSP item is not the joined response")
	}
	entry, err := o.Cache.Backend.Get(context.Background(), OCSPCacheKey(p.cert, p.ca))
	if err != nil {
		t.Fatal(err)
	}
	if entry == nil {
		t.Fatal("no cache entry for the joined response")
	}
	if !entry.NextUpdate.Equal(now.Add(time.Hour)) {
		t.Errorf("cache entry valid until %s, expected the nextUpdate %s of the certificate's SingleResponse", entry.NextUpdate, now.Add(time.Hour))
	}
}

// A fetched response with conflicting SingleResponses about the certificate
// reaches the verifier, which rejects it, but is not cached.
func TestOnlineOCSPAmbiguousResponseNotCached(t *testing.T) {
	p := newOCSPPKI(t)
	now := time.Now().Truncate(time.Second)
	good := p.responseWith(t, ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)})
	revoked := p.responseWith(t, ocsp.Response{Status: ocsp.Revoked, RevokedAt: now.Add(-time.Hour),
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)})
	ambiguous := testcert.OCSPJoin(t, p.caKey, good, revoked)
	r := newOCSPResponder(t, p)
	r.setOverride(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(ambiguous)
	})
	o := newOCSPOnline(t, r.server.URL, 5*time.Second, 2)

	set, err := o.Collateral(context.Background(), ocspQuery(p))
	if err != nil {
		t.Fatal(err)
	}
	items := set.OfKind(KindOCSP)
	if len(items) != 1 {
		t.Fatalf("%d OCSP items, expected 1 (ignored: %v)", len(items), set.Ignored)
	}
	if !bytes.Equal(items[0].Raw, ambiguous) {
		t.Fatal("the OCSP item is not the ambiguous response, which the verifier must see to reject it")
	}
	entry, err := o.Cache.Backend.Get(context.Background(), OCSPCacheKey(p.cert, p.ca))
	if err != nil {
		t.Fatal(err)
	}
	if entry != nil {
		t.Error("the ambiguous response was cached")
	}
}
