package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloister-dev/cloister/ratls"
	"github.com/cloister-dev/cloister/tee/snp"
)

// connect prints a redirect from the verified server and follows none, so
// no request leaves over a connection it did not verify.
func TestConnectDoesNotFollowRedirects(t *testing.T) {
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.Write([]byte("unverified body"))
	}))
	defer plain.Close()

	addr, root := startRATLSServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/leak", http.StatusFound)
	}))

	out, err := runCloister(t, "connect", "--challenge=false", "--trust-anchor", root, "--allow-emulated", "https://"+addr+"/")
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, out)
	}
	if !strings.Contains(out, "302") {
		t.Errorf("output does not show the redirect status:\n%s", out)
	}
	if strings.Contains(out, "unverified body") || plainHits.Load() != 0 {
		t.Errorf("connect followed the redirect to the plain HTTP server (%d requests):\n%s", plainHits.Load(), out)
	}
}

// A server in mutual mode that rejects the client's missing certificate
// gets an error that names mutual mode and --attest.
func TestConnectNamesMutualMode(t *testing.T) {
	addr, root := startRATLSServer(t, ratls.NewVerifier(ratls.VerifyOptions{}), http.NotFoundHandler())

	for _, challenge := range []string{"--challenge=true", "--challenge=false"} {
		_, err := runCloister(t, "connect", challenge, "--trust-anchor", root, "--allow-emulated", "https://"+addr+"/")
		if err == nil || !strings.Contains(err.Error(), "mutual mode") || !strings.Contains(err.Error(), "--attest") {
			t.Errorf("connect %s to a mutual-mode server: error %v, want one that names mutual mode and --attest", challenge, err)
		}
	}
}

// startRATLSServer serves h over RA-TLS on 127.0.0.1 from a new emulated
// SEV-SNP TEE, verifying clients with clients when it is not nil, until
// the test ends. It returns the address and the path of the development
// root to pass as --trust-anchor.
func startRATLSServer(t *testing.T, clients *ratls.Verifier, h http.Handler) (addr, root string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dev-tee")
	e, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Save(dir); err != nil {
		t.Fatal(err)
	}
	certs, err := ratls.NewCertSource(context.Background(), e, ratls.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ratls.ServerConfig(certs, clients, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).String(), filepath.Join(dir, "ark.pem")
}
