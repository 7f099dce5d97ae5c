package corpus

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RootCRLPath is the path under which ServeCollateral serves the Intel SGX
// root CA CRL. PCS names this CRL by a full URL of its own, so a client
// passes the server URL with this path as the root CRL URL.
const RootCRLPath = "/rootcacrl"

// ServeCollateral starts a loopback HTTP server that serves the case's
// collateral files the way AMD KDS and Intel PCS serve them. It serves KDS
// certificate chains and VCEKs, PCS TCB Info and QE Identity with their
// issuer chains in headers, and the CRLs. A request for a file the case
// does not have gets 404, as the real services respond for an item they do
// not have. The server closes when the test ends.
func (c Case) ServeCollateral(t testing.TB) *httptest.Server {
	t.Helper()
	file := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(c.Dir, name))
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
		case p == RootCRLPath:
			serve(w, file("root_ca_crl.der"), "application/pkix-crl", "", "")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}
