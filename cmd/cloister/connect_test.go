package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloister-dev/cloister/agent"
	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
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

	out, err := runCloister(t, "connect", "--challenge=false", "--trust-anchor", root, "--allow-emulated", "--allow-any-workload", "https://"+addr+"/")
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
		_, err := runCloister(t, "connect", challenge, "--trust-anchor", root, "--allow-emulated", "--allow-any-workload", "https://"+addr+"/")
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

// startChallengingAgentProxy runs the agent's proxy in mutual mode with
// the client challenge required, in front of a workload that responds
// "served". The proxy trusts clients of the emulated TEE saved in
// clientDir. It returns the address and the proxy's development root.
func startChallengingAgentProxy(t *testing.T, clientDir string) (addr, root string) {
	t.Helper()
	serverDir := filepath.Join(t.TempDir(), "server-tee")
	server, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Save(serverDir); err != nil {
		t.Fatal(err)
	}
	client, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Save(clientDir); err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("served"))
	}))
	t.Cleanup(upstream.Close)

	anchors := &collateral.Set{}
	if n, reason := anchors.AddBytes("client emulator root", client.Root().Raw); n != 1 {
		t.Fatalf("adding the client emulator's root: %s", reason)
	}
	clients := ratls.NewVerifier(ratls.VerifyOptions{Attest: attest.Options{TrustAnchors: anchors}, Appraise: appraise.Options{AllowEmulated: true}})
	certs, err := ratls.NewCertSource(context.Background(), server, ratls.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &agent.Proxy{TLS: ratls.ServerConfig(certs, clients, "http/1.1"), Attester: server, Upstream: upstream.Listener.Addr().String(),
		Clients: clients, RequireClientChallenge: true, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String(), filepath.Join(serverDir, "ark.pem")
}

// connect --attest responds to the agent's challenge, and without
// --challenge it is closed by an agent that requires the response.
func TestConnectRespondsToAgentChallenge(t *testing.T) {
	clientDir := filepath.Join(t.TempDir(), "client-tee")
	addr, root := startChallengingAgentProxy(t, clientDir)
	args := []string{"connect", "--attest", "--emulated", "--emulator-dir", clientDir, "--trust-anchor", root, "--allow-emulated",
		"--measurement", emulatedSNPMeasurement}

	out, err := runCloister(t, append(args, "https://"+addr+"/")...)
	if err != nil {
		t.Fatalf("connect --attest: %v\n%s", err, out)
	}
	if !strings.Contains(out, "served") {
		t.Errorf("output lacks the workload's response:\n%s", out)
	}
	if !strings.Contains(out, "the server accepted this client's fresh evidence") {
		t.Errorf("output does not report the accepted client evidence:\n%s", out)
	}

	out, err = runCloister(t, append(args, "--challenge=false", "https://"+addr+"/")...)
	if err == nil {
		t.Fatalf("connect --challenge=false was served by an agent that requires the client challenge:\n%s", out)
	}
	if !strings.Contains(err.Error(), "without --challenge=false") {
		t.Errorf("error %v, want one that names --challenge=false", err)
	}
}

func TestConnectErrorOnRejectedClientEvidence(t *testing.T) {
	err := connectError(newConnectCmd(), "text", true, fmt.Errorf("Get: %w", ratls.ErrChallengeRejected))
	if code := exitCode(t, err); code != exitRejected {
		t.Errorf("exit code %d, want %d", code, exitRejected)
	}
	if !strings.Contains(err.Error(), "the server's log names the reason") {
		t.Errorf("error %v, want one that points to the server's log", err)
	}
}

// emulatedSNPMeasurement is the emulated SEV-SNP guest's default launch
// measurement: the SHA-384 of "cloister emulated SEV-SNP guest".
const emulatedSNPMeasurement = "f232d319cdebe58d575154760a6d60a2a82d64533f4826102c8024f3a418ac3cdf9abd1f6ec4b08f8120620818ea572a"

// connect refuses to run without an expected workload, and rejects a
// server whose measurement differs from the expected one.
func TestConnectNeedsExpectedWorkload(t *testing.T) {
	clientDir := filepath.Join(t.TempDir(), "client-tee")
	addr, root := startChallengingAgentProxy(t, clientDir)
	base := []string{"connect", "--attest", "--emulated", "--emulator-dir", clientDir, "--trust-anchor", root, "--allow-emulated"}

	_, err := runCloister(t, append(base, "https://"+addr+"/")...)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), "--measurement") {
		t.Errorf("connect without an expected workload: %v, want a usage error that names --measurement", err)
	}

	other := strings.Repeat("ab", 48)
	_, err = runCloister(t, append(base, "--measurement", other, "https://"+addr+"/")...)
	if !errors.As(err, &ee) || ee.code != exitRejected {
		t.Errorf("connect --measurement %s to another workload: %v, want a rejection", other, err)
	}
}

// With --fail, an HTTP error status of the verified server exits with
// status 3 after the body is printed; without it, connect exits 0.
func TestConnectFail(t *testing.T) {
	clientDir := filepath.Join(t.TempDir(), "client-tee")
	addr, root := startChallengingAgentProxy(t, clientDir)
	base := []string{"connect", "--attest", "--emulated", "--emulator-dir", clientDir, "--trust-anchor", root, "--allow-emulated",
		"--measurement", emulatedSNPMeasurement}

	out, err := runCloister(t, append(base, "https://"+addr+"/missing")...)
	if err != nil {
		t.Fatalf("connect without --fail to a 404: %v", err)
	}
	out, err = runCloister(t, append(base, "--fail", "https://"+addr+"/missing")...)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitHTTPStatus || !strings.Contains(err.Error(), "404") {
		t.Errorf("connect --fail to a 404: %v, want exit status %d naming 404", err, exitHTTPStatus)
	}
	if !strings.Contains(out, "not found") {
		t.Errorf("connect --fail did not print the body:\n%s", out)
	}
	if _, err := runCloister(t, append(base, "--fail", "https://"+addr+"/")...); err != nil {
		t.Errorf("connect --fail to a 200: %v", err)
	}
}
