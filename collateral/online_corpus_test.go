package collateral_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
	_ "github.com/cloister-dev/cloister/tee/dcap"
	_ "github.com/cloister-dev/cloister/tee/snp"
)

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

				srv := c.ServeCollateral(t)
				opts := collateral.FetcherOptions{Timeout: 5 * time.Second, Retries: 1, Backoff: time.Millisecond,
					RequestsPerSecond: 1000, Burst: 100}
				online := &collateral.Online{
					Cache: &collateral.Cache{Backend: collateral.DiskBackend{Dir: t.TempDir()}},
					KDS:   collateral.NewKDS(srv.URL, opts),
					PCS:   collateral.NewPCS(srv.URL, srv.URL+corpus.RootCRLPath, opts),
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
