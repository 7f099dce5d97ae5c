package pccs

import (
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// testCRL returns a DER CRL signed by a new test root, valid from
// thisUpdate to nextUpdate, and the root's PEM.
func testCRL(t *testing.T, thisUpdate, nextUpdate time.Time) ([]byte, string) {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P256())
	tmpl := testcert.Template(1, "test root", true, x509.KeyUsageCertSign|x509.KeyUsageCRLSign)
	cert := testcert.Issue(t, tmpl, nil, &key.PublicKey, key)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
	}, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
}

func TestChainHeaderEncoding(t *testing.T) {
	now := time.Now()
	crl, chain := testCRL(t, now.Add(-time.Hour), now.Add(time.Hour))
	backend := collateral.DiskBackend{Dir: t.TempDir()}
	err := backend.Put(context.Background(), &collateral.Entry{Key: "pcs/pckcrl/processor", URL: "https://pcs.example.test/pckcrl",
		Body: crl, Headers: map[string]string{"SGX-PCK-CRL-Issuer-Chain": chain}, FetchedAt: now, NextUpdate: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&Handler{Backend: backend}).Mux())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/sgx/certification/v4/pckcrl?ca=processor&encoding=der")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	header := resp.Header.Get("SGX-PCK-CRL-Issuer-Chain")
	if strings.Contains(header, "+") {
		t.Errorf("chain header contains '+', which RFC 3986 decoders keep: %.60q", header)
	}
	decoders := map[string]func(string) (string, error){"RFC 3986": url.PathUnescape, "form": url.QueryUnescape}
	for name, decode := range decoders {
		got, err := decode(header)
		if err != nil {
			t.Errorf("%s decoding: %v", name, err)
			continue
		}
		if got != chain {
			t.Errorf("%s decoding gives %.60q, want the stored chain", name, got)
		}
	}
}

func TestRefreshesExpiredEntry(t *testing.T) {
	now := time.Now()
	expired, _ := testCRL(t, now.Add(-48*time.Hour), now.Add(-time.Hour))
	current, _ := testCRL(t, now.Add(-time.Hour), now.Add(30*24*time.Hour))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sgx/certification/v4/pckcrl" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(current)
	}))
	defer upstream.Close()

	backend := collateral.DiskBackend{Dir: t.TempDir()}
	err := backend.Put(context.Background(), &collateral.Entry{Key: "pcs/pckcrl/processor", URL: upstream.URL + "/sgx/certification/v4/pckcrl",
		Body: expired, FetchedAt: now.Add(-48 * time.Hour), NextUpdate: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Backend: backend, Online: &collateral.Online{
		Cache: &collateral.Cache{Backend: backend},
		PCS:   collateral.NewPCS(upstream.URL, upstream.URL+"/absent", fastOptions()),
	}}
	srv := httptest.NewServer(h.Mux())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/sgx/certification/v4/pckcrl?ca=processor&encoding=der")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if string(body) != string(current) {
		t.Error("PCCS served the CRL past its nextUpdate, want the refreshed one")
	}
	if w := resp.Header.Get("Warning"); w != "" {
		t.Errorf("Warning header %q on a refreshed item", w)
	}
}
