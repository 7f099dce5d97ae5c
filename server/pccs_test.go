package server

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/collateral/pccs"
	"github.com/cloister-dev/cloister/collateral/storecache"
	"github.com/cloister-dev/cloister/store"
)

// TestPCCSServesSharedCache checks that collateral one replica cached in the
// store is served to DCAP tooling under the PCCS API paths.
func TestPCCSServesSharedCache(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ts := startService(t, b, serviceOptions{pccs: func(st store.Store) http.Handler {
				return (&pccs.Handler{Backend: storecache.Backend{Cache: st.Collateral()}, Logger: quietLogger()}).Mux()
			}})
			path := ts.URL + "/sgx/certification/v4/qe/identity"

			resp, err := http.Get(path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("uncached item: status %d, want 404", resp.StatusCode)
			}

			body := []byte(`{"enclaveIdentity":{"id":"QE"},"signature":"00"}`)
			entry := &collateral.Entry{Key: "pcs/sgx/qe/identity", URL: "https://pcs.example.test/qe", Body: body,
				Headers:   map[string]string{"SGX-Enclave-Identity-Issuer-Chain": "-----BEGIN CERTIFICATE-----\n"},
				FetchedAt: time.Now(), NextUpdate: time.Now().Add(24 * time.Hour)}
			if err := (storecache.Backend{Cache: ts.store.Collateral()}).Put(context.Background(), entry); err != nil {
				t.Fatal(err)
			}

			resp, err = http.Get(path)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("cached item: status %d, want 200", resp.StatusCode)
			}
			if string(got) != string(body) {
				t.Errorf("body = %s, want %s", got, body)
			}
			chain, _ := url.QueryUnescape(resp.Header.Get("SGX-Enclave-Identity-Issuer-Chain"))
			if chain != "-----BEGIN CERTIFICATE-----\n" {
				t.Errorf("issuer chain header = %q", chain)
			}
		})
	}
}
