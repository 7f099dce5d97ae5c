package pccs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
	_ "github.com/cloister-dev/cloister/tee/dcap"
)

func fastOptions() collateral.FetcherOptions {
	return collateral.FetcherOptions{Timeout: 5 * time.Second, Retries: 1, Backoff: time.Millisecond, RequestsPerSecond: 1000, Burst: 100}
}

// TestServesDCAPClients puts a Cloister PCCS between Intel (a mock) and a
// DCAP client, and checks that every TDX and SGX corpus case verified through
// it gives the verdict it gives offline.
func TestServesDCAPClients(t *testing.T) {
	for _, tee := range []string{"sgx", "tdx"} {
		for _, c := range corpus.Cases(t, tee) {
			t.Run(c.Name, func(t *testing.T) {
				upstream := c.ServeCollateral(t)
				cache := collateral.DiskBackend{Dir: t.TempDir()}
				h := &Handler{Backend: cache, Online: &collateral.Online{
					Cache: &collateral.Cache{Backend: cache},
					PCS:   collateral.NewPCS(upstream.URL, upstream.URL+corpus.RootCRLPath, fastOptions()),
				}}
				pccs := httptest.NewServer(h.Mux())
				t.Cleanup(pccs.Close)

				client := &collateral.Online{
					Cache: &collateral.Cache{Backend: collateral.DiskBackend{Dir: t.TempDir()}},
					PCS:   collateral.NewPCS(pccs.URL, pccs.URL+"/sgx/certification/v4/rootcacrl", fastOptions()),
				}
				at := c.Time(t)
				data := c.EvidenceBytes(t)
				through := appraise.Evaluate(context.Background(), attest.Evidence{Data: data},
					attest.Options{At: at, Collateral: client}, appraise.Options{})
				offline := appraise.Evaluate(context.Background(), attest.Evidence{Data: data},
					attest.Options{At: at, Collateral: c.Collateral(t)}, appraise.Options{})
				if through.Verdict != offline.Verdict || through.ErrorKind() != offline.ErrorKind() {
					t.Fatalf("through the PCCS: %s (%v); offline: %s (%v)", through.Verdict, through.Error, offline.Verdict, offline.Error)
				}
				if through.Claims != nil && offline.Claims != nil && through.Claims.TCB.Status != offline.Claims.TCB.Status {
					t.Errorf("TCB status through the PCCS %q, offline %q", through.Claims.TCB.Status, offline.Claims.TCB.Status)
				}
			})
		}
	}
}

func TestRejectsBadParameters(t *testing.T) {
	h := &Handler{Backend: collateral.DiskBackend{Dir: t.TempDir()}}
	srv := httptest.NewServer(h.Mux())
	defer srv.Close()
	cases := map[string]int{
		"/sgx/certification/v4/tcb?fmspc=zz":           http.StatusBadRequest,
		"/sgx/certification/v4/tcb?fmspc=00906ED50000": http.StatusNotFound,
		"/sgx/certification/v4/pckcrl?ca=other":        http.StatusBadRequest,
		"/sgx/certification/v4/pckcrl?ca=processor":    http.StatusNotFound,
		"/sgx/certification/v4/pckcert":                http.StatusNotFound,
		"/tdx/certification/v4/qe/identity":            http.StatusNotFound,
	}
	for path, want := range cases {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
	}
}
