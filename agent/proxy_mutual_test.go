package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/syncbuf"
	"github.com/cloister-dev/cloister/ratls"
	"github.com/cloister-dev/cloister/tee/snp"
)

// mutualProxy is a proxy in mutual mode in front of a workload that
// responds "served", with a client in a TEE that the proxy trusts.
type mutualProxy struct {
	addr string
	log  *syncbuf.Buffer
	// v verifies the proxy; own is the client's certificate source.
	v   *ratls.Verifier
	own *ratls.CertSource
	// clientTEE is the TEE behind own.
	clientTEE *snp.Emulator
}

func startMutualProxy(t *testing.T, requireClientChallenge bool, maxChallenges int) *mutualProxy {
	t.Helper()
	server := mustEmulator(t)
	client := namedEmulator(t, "other", snp.EmulatorOptions{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("served"))
	}))
	t.Cleanup(upstream.Close)

	certs, err := ratls.NewCertSource(context.Background(), server, ratls.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	own, err := ratls.NewCertSource(context.Background(), client, ratls.IssueOptions{Role: ratls.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	clients := clientVerifier(t, client, appraise.Options{})
	p := &Proxy{TLS: ratls.ServerConfig(certs, clients, "http/1.1"), Attester: server,
		Upstream: upstream.Listener.Addr().String(), Clients: clients, RequireClientChallenge: requireClientChallenge,
		MaxChallenges: maxChallenges, Log: slog.New(slog.NewTextHandler(logs, nil))}
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
	return &mutualProxy{addr: ln.Addr().String(), log: logs, v: clientVerifier(t, server, appraise.Options{}), own: own, clientTEE: client}
}

// oldClientConfig is the configuration of a client in mutual mode that
// supports only ratls.ProtoChallenge.
func oldClientConfig(m *mutualProxy) *tls.Config {
	cfg := ratls.ClientConfig(m.v, m.own, true, "http/1.1")
	cfg.NextProtos = slices.DeleteFunc(cfg.NextProtos, func(s string) bool { return s == ratls.ProtoMutualChallenge })
	return cfg
}

// waitLog waits up to 10 s for the proxy to log text.
func waitLog(t *testing.T, logs *syncbuf.Buffer, text string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(logs.String(), text) {
			return
		}
	}
	t.Errorf("the proxy did not log %q; log:\n%s", text, logs.String())
}

func TestProxyChallengesClient(t *testing.T) {
	m := startMutualProxy(t, true, 0)
	conn, err := ratls.DialMutual(context.Background(), "tcp", m.addr, ratls.ClientConfig(m.v, m.own, true, "http/1.1"), m.v, m.clientTEE, true)
	if err != nil {
		t.Fatalf("DialMutual: %v", err)
	}
	conn.Close()
	if !conn.FreshAccepted {
		t.Error("the proxy did not challenge the client")
	}

	body, err := httpGetAs(t, m.addr, m.v, m.own)
	if err != nil {
		t.Fatalf("GET through the proxy: %v", err)
	}
	if body != "served" {
		t.Errorf("body %q, want %q", body, "served")
	}
}

// A client with the client's certificate and key but another TEE is
// rejected by the proxy's challenge.
func TestProxyRejectsStolenClientCertificate(t *testing.T) {
	m := startMutualProxy(t, true, 0)
	thief := namedEmulator(t, "thief", snp.EmulatorOptions{Measurement: bytes.Repeat([]byte{7}, 48)})
	_, err := ratls.DialMutual(context.Background(), "tcp", m.addr, ratls.ClientConfig(m.v, m.own, true, "http/1.1"), m.v, thief, true)
	if !errors.Is(err, ratls.ErrChallengeRejected) {
		t.Errorf("error %v, want ErrChallengeRejected", err)
	}
	waitLog(t, m.log, "peer rejected")
	waitLog(t, m.log, "client certificate SHA-256")
	waitLog(t, m.log, "fix=")
}

// A client that supports only ratls.ProtoChallenge is served unless the
// proxy requires the client challenge.
func TestProxyOldClient(t *testing.T) {
	t.Run("not required", func(t *testing.T) {
		m := startMutualProxy(t, false, 0)
		conn, err := ratls.Dial(context.Background(), "tcp", m.addr, oldClientConfig(m), m.v, true)
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer conn.Close()
		if got := conn.ConnectionState().NegotiatedProtocol; got != ratls.ProtoChallenge {
			t.Errorf("negotiated %q, want %q", got, ratls.ProtoChallenge)
		}
	})

	t.Run("required", func(t *testing.T) {
		m := startMutualProxy(t, true, 0)
		if _, err := ratls.Dial(context.Background(), "tcp", m.addr, oldClientConfig(m), m.v, true); err == nil {
			t.Error("an old client was served although the proxy requires the client challenge")
		}
		waitLog(t, m.log, "the agent requires fresh client evidence (--challenge-clients)")
	})
}

// blockingAttester never produces evidence: it reports its call and waits
// for its context to end, as a client that stops responding would.
type blockingAttester struct {
	attest.Attester
	called chan struct{}
	once   sync.Once
}

func (a *blockingAttester) Attest(ctx context.Context, _ []byte) (*attest.Evidence, error) {
	a.once.Do(func() { close(a.called) })
	<-ctx.Done()
	return nil, ctx.Err()
}

// Clients that negotiate the mutual challenge and then send nothing, or
// stop before their challenge response, hold no challenge slot, so
// another client is served.
func TestProxySilentMutualClientHoldsNoSlot(t *testing.T) {
	m := startMutualProxy(t, true, 1)

	silent, err := tls.Dial("tcp", m.addr, ratls.ClientConfig(m.v, m.own, true, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if got := silent.ConnectionState().NegotiatedProtocol; got != ratls.ProtoMutualChallenge {
		t.Fatalf("negotiated %q, want %q", got, ratls.ProtoMutualChallenge)
	}

	stalled := &blockingAttester{Attester: m.clientTEE, called: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ratls.DialMutual(ctx, "tcp", m.addr, ratls.ClientConfig(m.v, m.own, true, "http/1.1"), m.v, stalled, true)
	select {
	case <-stalled.called:
	case <-time.After(15 * time.Second):
		t.Fatal("the stalled client never received the proxy's challenge")
	}

	// With the slot held by a silent client, this request would wait for
	// the 30 s handshake deadline and time out after 20 s.
	start := time.Now()
	body, err := httpGetAs(t, m.addr, m.v, m.own)
	if err != nil {
		t.Fatalf("a client beside two silent ones: %v", err)
	}
	if body != "served" {
		t.Errorf("body %q, want %q", body, "served")
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("the request took %s beside two silent clients", elapsed)
	}
}

func TestProxyClientChallengeNeedsVerifier(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := &Proxy{Upstream: "127.0.0.1:1", RequireClientChallenge: true}
	err = p.Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "--verify-clients") {
		t.Errorf("error %v, want one that names --verify-clients", err)
	}
}

// Evidence that belongs to another certificate or connection gets a fix
// that warns against relaxing the flags; other rejections name the
// agent's client flags.
func TestClientRejectionFix(t *testing.T) {
	binding := fmt.Errorf("client certificate SHA-256 00: %w", attest.Errorf(attest.ErrBinding, "challenge measurement", "differs"))
	if fix := clientRejectionFix(binding); !strings.Contains(fix, "copied out of their TEE") {
		t.Errorf("fix for a binding error = %q", fix)
	}
	chain := attest.Errorf(attest.ErrChain, "ARK", "no trusted root")
	if fix := clientRejectionFix(chain); !strings.Contains(fix, "--client-trust-anchor") {
		t.Errorf("fix for a chain error = %q", fix)
	}
	stale := attest.Errorf(attest.ErrBinding, "claims.iat", "the certificate's evidence is too old")
	if fix := clientRejectionFix(stale); !strings.Contains(fix, "--client-max-age") {
		t.Errorf("fix for stale certificate evidence = %q", fix)
	}
}
