package pccs

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// corpusCase is a corpus folder with Intel TDX collateral.
const corpusCase = "tdx/emr-v4-azure-cmc"

func corpusFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpus.Dir(t), corpusCase, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// newCachedPCCS starts a PCCS whose cache contains the corpus case's TCB Info,
// TD QE Identity and PCK CRL, with the CRL stored as crlBody.
func newCachedPCCS(t *testing.T, crlBody []byte) *httptest.Server {
	t.Helper()
	now := time.Now()
	backend := collateral.DiskBackend{Dir: t.TempDir()}
	for _, e := range []*collateral.Entry{
		{Key: "pcs/tdx/tcb/90C06F000000", Body: corpusFile(t, "tcb_info.json"),
			Headers: map[string]string{"TCB-Info-Issuer-Chain": string(corpusFile(t, "tcb_info_issuer_chain.pem"))}},
		{Key: "pcs/tdx/qe/identity", Body: corpusFile(t, "qe_identity.json")},
		{Key: "pcs/pckcrl/platform", Body: crlBody,
			Headers: map[string]string{"SGX-PCK-CRL-Issuer-Chain": string(corpusFile(t, "pck_crl_issuer_chain.pem"))}},
		{Key: "pcs/rootcacrl", Body: corpusFile(t, "root_ca_crl.der")},
	} {
		e.URL = "https://pcs.example.test/" + e.Key
		e.FetchedAt = now
		if err := backend.Put(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer((&Handler{Backend: backend}).Mux())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, rawURL string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestQueryParameters(t *testing.T) {
	srv := newCachedPCCS(t, corpusFile(t, "pck_crl.der"))
	tests := []struct {
		path   string
		status int
		// wantBody lists substrings of the response body.
		wantBody []string
	}{
		{"/tdx/certification/v4/tcb?fmspc=90C06F000000", http.StatusOK, []string{`"tcbInfo"`}},
		{"/tdx/certification/v4/tcb?fmspc=90c06f000000&update=standard", http.StatusOK, []string{`"tcbInfo"`}},
		{"/tdx/certification/v4/tcb?fmspc=90C06F000000&update=Standard", http.StatusOK, []string{`"tcbInfo"`}},
		{"/tdx/certification/v4/tcb?fmspc=90C06F000000&update=early", http.StatusBadRequest,
			[]string{`update parameter "early" is not served`, "omit update or set update=standard"}},
		{"/tdx/certification/v4/tcb?fmspc=90C06F000000&update=all", http.StatusBadRequest,
			[]string{`update parameter "all" is invalid`, "standard and early"}},
		{"/tdx/certification/v4/tcb?fmspc=90C06F000000&tcbEvaluationDataNumber=17", http.StatusBadRequest,
			[]string{`tcbEvaluationDataNumber parameter "17" is not served`}},
		{"/tdx/certification/v4/tcb?fmspc=90C06F000000&fmspc=00906ED50000", http.StatusBadRequest,
			[]string{"query parameter fmspc appears 2 times", "pass it once"}},
		{"/tdx/certification/v4/tcb?fmspc=90C06F000000&format=v2", http.StatusBadRequest,
			[]string{`query parameter format="v2" is not supported`, "accepts only fmspc, update, tcbEvaluationDataNumber"}},
		{"/tdx/certification/v4/tcb?fmspc=%zz", http.StatusBadRequest, []string{"invalid query"}},
		{"/tdx/certification/v4/qe/identity", http.StatusOK, []string{`"enclaveIdentity"`}},
		{"/tdx/certification/v4/qe/identity?update=standard", http.StatusOK, []string{`"enclaveIdentity"`}},
		{"/tdx/certification/v4/qe/identity?update=early", http.StatusBadRequest, []string{`update parameter "early" is not served`}},
		{"/sgx/certification/v4/pckcrl?ca=platform&encoding=hex", http.StatusBadRequest,
			[]string{`encoding parameter "hex" is invalid`, "set encoding=der or encoding=pem"}},
		{"/sgx/certification/v4/pckcrl?ca=platform&encoding=der&encoding=pem", http.StatusBadRequest,
			[]string{"query parameter encoding appears 2 times"}},
		{"/sgx/certification/v4/rootcacrl?encoding=pem", http.StatusBadRequest,
			[]string{`query parameter encoding="pem" is not supported`, "accepts no parameters"}},
		{"/sgx/certification/v4/rootcacrl", http.StatusOK, nil},
		{"/tdx/certification/v4/tcb?fmspc=90C06F000000&update=" + strings.Repeat("x", 4000), http.StatusBadRequest,
			[]string{`update parameter "` + strings.Repeat("x", 128) + `"... (4000 bytes) is invalid`}},
		{"/sgx/certification/v4/rootcacrl?" + strings.Repeat("y", 300) + "=1", http.StatusBadRequest,
			[]string{`query parameter "` + strings.Repeat("y", 128) + `"... (300 bytes)="1" is not supported`}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv.URL+tt.path)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tt.status, body)
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(string(body), want) {
					t.Errorf("body %q does not contain %q", body, want)
				}
			}
		})
	}
}

func TestPCKCRLEncoding(t *testing.T) {
	der := corpusFile(t, "pck_crl.der")
	pemCRL := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	tests := []struct {
		name        string
		stored      []byte
		query       string
		contentType string
		want        []byte
	}{
		{"default is PEM", der, "", "application/x-pem-file", pemCRL},
		{"pem", der, "&encoding=pem", "application/x-pem-file", pemCRL},
		{"der", der, "&encoding=der", "application/pkix-crl", der},
		{"der in upper case", der, "&encoding=DER", "application/pkix-crl", der},
		{"stored PEM served as DER", pemCRL, "&encoding=der", "application/pkix-crl", der},
		{"stored PEM served as PEM", pemCRL, "", "application/x-pem-file", pemCRL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCachedPCCS(t, tt.stored)
			resp, body := get(t, srv.URL+"/sgx/certification/v4/pckcrl?ca=platform"+tt.query)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; body %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if string(body) != string(tt.want) {
				t.Errorf("body is %d bytes, want the %d bytes of the CRL in the requested encoding", len(body), len(tt.want))
			}
			if resp.Header.Get("SGX-PCK-CRL-Issuer-Chain") == "" {
				t.Error("SGX-PCK-CRL-Issuer-Chain header missing")
			}
		})
	}
}

func TestPCKCRLCachedBodyInvalid(t *testing.T) {
	srv := newCachedPCCS(t, corpusFile(t, "tcb_info.json"))
	resp, body := get(t, srv.URL+"/sgx/certification/v4/pckcrl?ca=platform&encoding=der")
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	if want := "the cached PCK CRL pcs/pckcrl/platform is invalid"; !strings.Contains(string(body), want) {
		t.Errorf("body %q does not contain %q", body, want)
	}
}
