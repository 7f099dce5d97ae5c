package agent

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/ratls"
	"github.com/cloister-dev/cloister/tee/snp"
)

// A client that negotiates the freshness challenge and never sends its
// nonce holds no challenge slot, so others are still served.
func TestProxyIdleChallengeHoldsNoSlot(t *testing.T) {
	e := mustEmulator(t)
	upstream, certs := startUpstreamAndCerts(t, e)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{TLS: ratls.ServerConfig(certs, nil, "http/1.1"), Attester: e,
		Upstream: upstream, MaxChallenges: 1, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Serve(ctx, ln)

	// The idle client completes the handshake with the challenge protocol
	// and sends nothing.
	idle, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ratls.ProtoChallenge}})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if got := idle.ConnectionState().NegotiatedProtocol; got != ratls.ProtoChallenge {
		t.Fatalf("negotiated %q, want %q", got, ratls.ProtoChallenge)
	}

	// With the slot held by the idle client, this request would wait for
	// the idle client's 30 s handshake deadline and time out after 20 s.
	body, err := httpGetAs(t, ln.Addr().String(), clientVerifier(t, e, appraise.Options{}), nil)
	if err != nil || body != "served" {
		t.Fatalf("a verifying client beside an idle one: body %q, error %v", body, err)
	}
}

// startUpstreamAndCerts starts an HTTP upstream that responds "served" to
// every request and an RA-TLS certificate source for e. It returns the
// upstream's address and the source.
func startUpstreamAndCerts(t *testing.T, e *snp.Emulator) (string, *ratls.CertSource) {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("served"))
	}))
	t.Cleanup(upstream.Close)
	certs, err := ratls.NewCertSource(context.Background(), e, ratls.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return upstream.Listener.Addr().String(), certs
}
