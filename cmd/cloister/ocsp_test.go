package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// verify --online --ocsp-url sends an OCSP request for each NVIDIA GPU
// certificate between the leaf and the root to the given responder, and a
// responder without the responses leaves the ocsp check not checked.
func TestVerifyNVIDIAOnlineOCSPURL(t *testing.T) {
	c, ok := corpus.FirstAccepted(t, "nvidia-gpu", func(c corpus.Case) bool { return c.Expect.OtherInputs["cert_chain"] != "" })
	if !ok {
		t.Skip("no accepted nvidia-gpu case with a certificate chain in the corpus")
	}
	var mu sync.Mutex
	var serials []string
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if req, err := ocsp.ParseRequest(body); err == nil {
			mu.Lock()
			serials = append(serials, req.SerialNumber.Text(16))
			mu.Unlock()
		}
		http.NotFound(w, r)
	}))
	defer responder.Close()

	out, err := runCloister(t, "verify", "--online", "--cache-dir", t.TempDir(), "--ocsp-url", responder.URL,
		"--collateral", c.Dir, "--at", c.Expect.At, "--output", "json", filepath.Join(c.Dir, c.Expect.Evidence))
	if code := exitCode(t, err); code != exitOK {
		t.Fatalf("exit code %d, want 0:\n%s", code, out)
	}
	var res struct {
		Claims struct {
			Checks []struct {
				Name, Result, Detail string
			} `json:"checks"`
		} `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	i := slices.IndexFunc(res.Claims.Checks, func(ch struct{ Name, Result, Detail string }) bool { return ch.Name == "ocsp" })
	if i < 0 {
		t.Fatalf("no ocsp check in %s", out)
	}
	if ch := res.Claims.Checks[i]; ch.Result != "not-checked" || !strings.Contains(ch.Detail, "not found upstream") {
		t.Errorf("ocsp check %+v, expected not checked because the responder has no response", ch)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(serials) != 3 {
		t.Errorf("OCSP requests for serials %v, expected three: the BROM, the provisioner CA and the identity CA", serials)
	}
}

// collateral fetch lists the checks that could not run after its fetch, so
// that a responder that served nothing does not look like a complete fetch.
func TestPrintNotChecked(t *testing.T) {
	claims := &attest.Claims{}
	claims.Pass("signature")
	claims.Skip("ocsp", false, "no OCSP response for the GPU identity CA; fetching them failed: HTTP 404")
	var out strings.Builder
	printNotChecked(&out, claims)
	if want := "  not checked: ocsp: no OCSP response for the GPU identity CA; fetching them failed: HTTP 404\n"; out.String() != want {
		t.Errorf("printNotChecked wrote %q, want %q", out.String(), want)
	}
	out.Reset()
	printNotChecked(&out, nil)
	if out.Len() != 0 {
		t.Errorf("printNotChecked(nil) wrote %q, want nothing", out.String())
	}
}
