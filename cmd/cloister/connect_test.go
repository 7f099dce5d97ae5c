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
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ratls.ServerConfig(certs, nil, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/leak", http.StatusFound)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	out, err := runCloister(t, "connect", "--challenge=false", "--trust-anchor", filepath.Join(dir, "ark.pem"), "--allow-emulated",
		"https://"+ln.Addr().(*net.TCPAddr).String()+"/")
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
	clients := ratls.NewVerifier(ratls.VerifyOptions{})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ratls.ServerConfig(certs, clients, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(ln)
	defer srv.Close()

	for _, challenge := range []string{"--challenge=true", "--challenge=false"} {
		_, err = runCloister(t, "connect", challenge, "--trust-anchor", filepath.Join(dir, "ark.pem"), "--allow-emulated",
			"https://"+ln.Addr().(*net.TCPAddr).String()+"/")
		if err == nil || !strings.Contains(err.Error(), "mutual mode") || !strings.Contains(err.Error(), "--attest") {
			t.Errorf("connect %s to a mutual-mode server: error %v, want one that names mutual mode and --attest", challenge, err)
		}
	}
}
