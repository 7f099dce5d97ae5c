package collateral

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/internal/testcert"
)

// reviewChainPEM returns a PEM issuer chain of a signing certificate and
// the self-signed root that issued it, named like Intel's.
func reviewChainPEM(t *testing.T) []byte {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	usage := x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	root := testcert.Issue(t, testcert.Template(1, "Intel SGX Root CA", true, usage), nil, &key.PublicKey, key)
	signer := testcert.Issue(t, testcert.Template(2, "Intel SGX TCB Signing", false, usage), root, &key.PublicKey, key)
	var out []byte
	for _, c := range []*x509.Certificate{signer, root} {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// TestReviewOnlineRootsLeftOut fetches TCB Info from a PCS on loopback
// whose issuer chain header ends in a root: the set must not offer that
// root as one the caller supplied, because verifiers trust those.
func TestReviewOnlineRootsLeftOut(t *testing.T) {
	chain := reviewChainPEM(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/tcb") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("TCB-Info-Issuer-Chain", url.QueryEscape(string(chain)))
		w.Write([]byte(`{"tcbInfo":{"id":"TDX","version":3},"signature":"00"}`))
	}))
	t.Cleanup(srv.Close)

	opts := FetcherOptions{Timeout: 5 * time.Second, Retries: 1, Backoff: time.Millisecond, RequestsPerSecond: 1000, Burst: 100}
	o := &Online{Cache: &Cache{Backend: DiskBackend{Dir: t.TempDir()}}, PCS: NewPCS(srv.URL, srv.URL+"/rootcacrl", opts)}
	set, _ := o.Collateral(context.Background(), Query{TEE: "tdx", FMSPC: "90c06f000000", At: time.Now()})

	if n := len(set.Certificates()); n != 2 {
		t.Errorf("%d certificates in the set, expected the 2 of the issuer chain", n)
	}
	if roots := set.SelfSigned(); len(roots) != 0 {
		t.Errorf("the set contains the fetched root %q", roots[0].Subject.CommonName)
	}
}
