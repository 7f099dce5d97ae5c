package collateral_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
	_ "github.com/cloister-dev/cloister/tee/dcap"
	_ "github.com/cloister-dev/cloister/tee/snp"
)

// caseUpstream serves one corpus case's collateral the way AMD KDS and
// Intel PCS serve it: KDS certificate chains and VCEKs, PCS TCB Info and QE
// Identity with their issuer chains in headers, and the CRLs. A request for a
// file the case does not have gets 404, as the real services respond for an
// item they do not have.
func caseUpstream(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	file := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil
		}
		return data
	}
	serve := func(w http.ResponseWriter, body []byte, contentType, chainHeader, chainFile string) {
		if body == nil {
			http.NotFound(w, nil)
			return
		}
		if chain := file(chainFile); chainHeader != "" && chain != nil {
			w.Header().Set(chainHeader, url.QueryEscape(string(chain)))
		}
		w.Header().Set("Content-Type", contentType)
		w.Write(body)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.HasSuffix(p, "/cert_chain"):
			serve(w, file("ask_ark.pem"), "application/x-pem-file", "", "")
		case strings.HasPrefix(p, "/vcek/v1/") && strings.HasSuffix(p, "/crl"):
			http.NotFound(w, r) // no AMD CRL is available for any corpus case
		case strings.HasPrefix(p, "/vcek/v1/"):
			serve(w, file("vcek.der"), "application/octet-stream", "", "")
		case strings.HasSuffix(p, "/certification/v4/tcb"):
			serve(w, file("tcb_info.json"), "application/json", "TCB-Info-Issuer-Chain", "tcb_info_issuer_chain.pem")
		case strings.HasSuffix(p, "/certification/v4/qe/identity"):
			serve(w, file("qe_identity.json"), "application/json", "SGX-Enclave-Identity-Issuer-Chain", "qe_identity_issuer_chain.pem")
		case strings.HasSuffix(p, "/pckcrl"):
			serve(w, file("pck_crl.der"), "application/pkix-crl", "SGX-PCK-CRL-Issuer-Chain", "pck_crl_issuer_chain.pem")
		case p == "/rootcacrl":
			serve(w, file("root_ca_crl.der"), "application/pkix-crl", "", "")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// offlineOnly returns the case's collateral that no upstream serves: a VLEK
// (installed by the cloud provider, not served by KDS) and caller roots that
// are not vendor roots.
func offlineOnly(t *testing.T, c corpus.Case) *collateral.Set {
	t.Helper()
	set := &collateral.Set{}
	for _, name := range []string{"vlek.der"} {
		p := filepath.Join(c.Dir, name)
		if _, err := os.Stat(p); err == nil {
			s, err := collateral.LoadPath(p)
			if err != nil {
				t.Fatal(err)
			}
			set.Merge(s)
		}
	}
	return set
}

func TestCorpusOnlineMatchesOffline(t *testing.T) {
	for _, tee := range []string{"snp", "sgx", "tdx"} {
		for _, c := range corpus.Cases(t, tee) {
			t.Run(c.Name, func(t *testing.T) {
				at := c.Time(t)
				data := c.EvidenceBytes(t)
				offline := appraise.Evaluate(context.Background(), attest.Evidence{Data: data},
					attest.Options{At: at, Collateral: c.Collateral(t)}, appraise.Options{})

				srv := caseUpstream(t, c.Dir)
				opts := collateral.FetcherOptions{Timeout: 5 * time.Second, Retries: 1, Backoff: time.Millisecond,
					RequestsPerSecond: 1000, Burst: 100}
				online := &collateral.Online{
					Cache: &collateral.Cache{Backend: collateral.DiskBackend{Dir: t.TempDir()}},
					KDS:   collateral.NewKDS(srv.URL, opts),
					PCS:   collateral.NewPCS(srv.URL, srv.URL+"/rootcacrl", opts),
				}
				fetched := appraise.Evaluate(context.Background(), attest.Evidence{Data: data},
					attest.Options{At: at, Collateral: collateral.Sources{offlineOnly(t, c), online}}, appraise.Options{})

				if fetched.Verdict != offline.Verdict {
					t.Fatalf("verdict through the fetch path %s, offline %s (fetch error: %v; offline error: %v)",
						fetched.Verdict, offline.Verdict, fetched.Error, offline.Error)
				}
				if string(fetched.Verdict) != c.Expect.DefaultVerdict {
					t.Errorf("verdict %s, expected %s", fetched.Verdict, c.Expect.DefaultVerdict)
				}
				if a, b := fetched.ErrorKind(), offline.ErrorKind(); a != b {
					t.Errorf("rejection kind through the fetch path %q, offline %q", a, b)
				}
				if fetched.Claims != nil && offline.Claims != nil && fetched.Claims.TCB.Status != offline.Claims.TCB.Status {
					t.Errorf("TCB status through the fetch path %q, offline %q", fetched.Claims.TCB.Status, offline.Claims.TCB.Status)
				}

				// An air-gapped site verifies from the exported bundle alone,
				// with the caller's roots as the case supplies them.
				bundle := filepath.Join(t.TempDir(), "bundle")
				if _, err := collateral.ExportBundle(context.Background(), online.Cache.Backend, bundle); err != nil {
					t.Fatal(err)
				}
				fromBundle, err := collateral.LoadPath(bundle)
				if err != nil {
					t.Fatal(err)
				}
				fromBundle.Merge(offlineOnly(t, c))
				for _, root := range c.Collateral(t).SelfSigned() {
					fromBundle.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "caller root", Raw: root.Raw, Certificate: root})
				}
				bundled := appraise.Evaluate(context.Background(), attest.Evidence{Data: data},
					attest.Options{At: at, Collateral: fromBundle}, appraise.Options{})
				if bundled.Verdict != offline.Verdict || bundled.ErrorKind() != offline.ErrorKind() {
					t.Errorf("verdict from the bundle %s (%v), offline %s (%v)", bundled.Verdict, bundled.Error, offline.Verdict, offline.Error)
				}
			})
		}
	}
}
