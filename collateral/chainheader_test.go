package collateral

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPCSChainHeaderStrict(t *testing.T) {
	_, der, _ := testCert(t)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	tests := []struct {
		name    string
		chain   string
		wantErr string
	}{
		{"chain", certPEM + certPEM, ""},
		{"text before the chain", "note: chain follows\n" + certPEM, "text outside PEM blocks at byte 0"},
		{"text between certificates", certPEM + "garbage\n" + certPEM, "text outside PEM blocks"},
		{"text after the chain", certPEM + "trailing", "text outside PEM blocks"},
		{"other block type", certPEM + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
			`block 2 has PEM type "PRIVATE KEY", expected CERTIFICATE`},
		{"PEM headers", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: der})),
			"block 1 has PEM headers"},
		{"unterminated block", "-----BEGIN CERTIFICATE-----\nMIIB", "invalid PEM block at byte 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("SGX-PCK-CRL-Issuer-Chain", url.QueryEscape(tt.chain))
				w.Header().Set("Content-Type", "application/pkix-crl")
				w.Write(testCRL(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
			}))
			defer srv.Close()
			pcs := NewPCS(srv.URL, "", FetcherOptions{Retries: -1, RequestsPerSecond: 1000, Burst: 100})
			reqs, err := pcs.requests(Query{TEE: "sgx", PCKCA: "processor"})
			if err != nil {
				t.Fatal(err)
			}
			var req request
			for _, r := range reqs {
				if r.key == "pcs/pckcrl/processor" {
					req = r
				}
			}
			e, err := req.fetch(t.Context())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("valid chain rejected: %v", err)
				}
				if got := strings.Count(e.Headers["SGX-PCK-CRL-Issuer-Chain"], "BEGIN CERTIFICATE"); got != 2 {
					t.Errorf("stored chain has %d certificates, want 2", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("chain accepted, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "SGX-PCK-CRL-Issuer-Chain") {
				t.Errorf("error %q does not name the header", err)
			}
		})
	}
}
