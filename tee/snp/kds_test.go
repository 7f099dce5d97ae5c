package snp

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// A KDS that does not know the chip returns 404. The rejection for the
// missing VCEK then names what KDS did not serve, so that the user sees
// the source's response rather than only the hint to pass the VCEK by hand.
func TestMissingVCEKNamesKDSResponse(t *testing.T) {
	var requests atomic.Int64
	kds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(kds.Close)

	e := sharedEmulator(t, EmulatorOptions{})
	online := &collateral.Online{
		Cache: &collateral.Cache{Backend: collateral.DiskBackend{Dir: t.TempDir()}},
		KDS: collateral.NewKDS(kds.URL, collateral.FetcherOptions{Timeout: 5 * time.Second, Retries: 1,
			Backoff: time.Millisecond, RequestsPerSecond: 1000, Burst: 100}),
	}
	opts := attest.Options{Collateral: online, TrustAnchors: anchors(e)}

	_, err := verify(t, signedReport(t, e, nil), opts)
	if !errors.Is(err, attest.ErrCollateralMissing) {
		t.Fatalf("error = %v, want collateral missing", err)
	}
	if requests.Load() == 0 {
		t.Fatal("the verifier sent no request to KDS")
	}
	for _, want := range []string{"VCEK", "did not get", "kds/vcek/", "not found upstream"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	// Offline collateral that lacks the VCEK gives the plain rejection,
	// also when a local file it ignored lies in a folder named kds.
	offline := &collateral.Set{Ignored: []string{"kds/notes.txt: not a DER certificate, CRL or public key"}}
	_, err = verify(t, signedReport(t, e, nil), attest.Options{Collateral: offline, TrustAnchors: anchors(e)})
	if !errors.Is(err, attest.ErrCollateralMissing) || strings.Contains(err.Error(), "did not get") {
		t.Errorf("offline error = %v, want collateral missing without a note on the online source", err)
	}
}
