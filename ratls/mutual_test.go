package ratls

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// serverOutcome is the server's result for one connection.
type serverOutcome struct {
	fresh *attest.Claims
	err   error
}

// serveMutual runs an RA-TLS echo server on loopback that serves both
// challenge protocols with ServeMutualChallenge, then echoes one line. It
// sends the outcome of each connection's challenge to the returned
// channel.
func serveMutual(t *testing.T, cfg *tls.Config, attester attest.Attester, clients *Verifier) (string, <-chan serverOutcome) {
	t.Helper()
	outcomes := make(chan serverOutcome, 16)
	addr := acceptLoopback(t, func(raw net.Conn) {
		defer raw.Close()
		conn := tls.Server(raw, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := conn.HandshakeContext(ctx); err != nil {
			outcomes <- serverOutcome{err: err}
			return
		}
		fresh, err := ServeMutualChallenge(ctx, conn, attester, clients)
		outcomes <- serverOutcome{fresh: fresh, err: err}
		if err != nil {
			return
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return
		}
		io.WriteString(conn, "echo: "+line)
	})
	return addr, outcomes
}

func nextOutcome(t *testing.T, outcomes <-chan serverOutcome) serverOutcome {
	t.Helper()
	select {
	case o := <-outcomes:
		return o
	case <-time.After(15 * time.Second):
		t.Fatal("the server reported no outcome within 15 s")
	}
	return serverOutcome{}
}

// mutualPeers is a server and a client, each in a fake TEE of its own
// measurement, that trust each other.
type mutualPeers struct {
	serverTEE, clientTEE *fakeAttester
	clientCerts          *CertSource
	v                    *Verifier
	addr                 string
	outcomes             <-chan serverOutcome
}

func startMutual(t *testing.T) *mutualPeers {
	t.Helper()
	p := &mutualPeers{serverTEE: &fakeAttester{measurement: [32]byte{1}}, clientTEE: &fakeAttester{measurement: [32]byte{2}}}
	serverCerts, err := NewCertSource(context.Background(), p.serverTEE, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.clientCerts, err = NewCertSource(context.Background(), p.clientTEE, IssueOptions{Role: RoleClient}); err != nil {
		t.Fatal(err)
	}
	clients := NewVerifier(acceptEmulated)
	p.addr, p.outcomes = serveMutual(t, ServerConfig(serverCerts, clients), p.serverTEE, clients)
	p.v = NewVerifier(acceptEmulated)
	return p
}

func TestMutualChallenge(t *testing.T) {
	p := startMutual(t)
	conn, err := DialMutual(context.Background(), "tcp", p.addr, ClientConfig(p.v, p.clientCerts, true), p.v, p.clientTEE, true)
	if err != nil {
		t.Fatalf("DialMutual: %v", err)
	}
	defer conn.Close()

	if got := conn.ConnectionState().NegotiatedProtocol; got != ProtoMutualChallenge {
		t.Errorf("negotiated %q, want %q", got, ProtoMutualChallenge)
	}
	if conn.Fresh == nil {
		t.Error("the client holds no fresh evidence of the server")
	}
	if !conn.FreshAccepted {
		t.Error("FreshAccepted is false after the server accepted the client's evidence")
	}
	o := nextOutcome(t, p.outcomes)
	if o.err != nil {
		t.Fatalf("server: %v", o.err)
	}
	if o.fresh == nil {
		t.Fatal("the server returned no fresh claims of the client")
	}
	if o.fresh.Measurement[0] != 2 {
		t.Errorf("server's fresh claims have measurement %x, want the client's", o.fresh.Measurement)
	}
	if got := echo(t, conn); got != "echo: hello\n" {
		t.Errorf("echo %q", got)
	}
	// One attestation for the client's certificate, one for its challenge
	// response.
	if p.clientTEE.calls != 2 {
		t.Errorf("client attester called %d times, want 2", p.clientTEE.calls)
	}
}

// fixedAttester returns the same evidence whatever report data it is
// asked for, as a thief replaying evidence it has seen would.
type fixedAttester struct{ evidence *attest.Evidence }

func (a fixedAttester) Name() string { return "replay" }

func (a fixedAttester) Attest(context.Context, []byte) (*attest.Evidence, error) {
	return a.evidence, nil
}

// A thief holding the client's certificate and key cannot respond to
// the server's challenge: neither with the certificate's evidence, nor from a
// TEE of another identity, nor without a TEE.
func TestMutualChallengeRejectsStolenCertificate(t *testing.T) {
	p := startMutual(t)
	stolen, err := p.clientCerts.Certificate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ce, err := ParseCertEvidence(stolen.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	certEvidence := &attest.Evidence{Format: fakeFormat, Data: ce.Evidence}

	cases := []struct {
		name      string
		attester  attest.Attester
		serverErr string
	}{
		{"certificate evidence", fixedAttester{certEvidence}, "produced for another session"},
		{"other TEE", &fakeAttester{measurement: [32]byte{3}}, "measurement differs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DialMutual(context.Background(), "tcp", p.addr, ClientConfig(p.v, p.clientCerts, true), p.v, c.attester, true)
			if !errors.Is(err, ErrChallengeRejected) {
				t.Errorf("client error %v, want ErrChallengeRejected", err)
			}
			o := nextOutcome(t, p.outcomes)
			if o.err == nil || !strings.Contains(o.err.Error(), c.serverErr) {
				t.Errorf("server error %v, want one containing %q", o.err, c.serverErr)
			}
			var rej *RejectionError
			if !errors.As(o.err, &rej) || rej.Certificate == nil || !rej.Certificate.Equal(stolen.Leaf) {
				t.Errorf("server error %v does not name the client's certificate", o.err)
			}
		})
	}

	t.Run("no attester", func(t *testing.T) {
		_, err := DialMutual(context.Background(), "tcp", p.addr, ClientConfig(p.v, p.clientCerts, true), p.v, nil, true)
		if err == nil || !strings.Contains(err.Error(), "no attester") {
			t.Errorf("client error %v, want one that names the missing attester", err)
		}
		o := nextOutcome(t, p.outcomes)
		if o.err == nil {
			t.Error("the server accepted a client that sent no challenge response")
		}
	})
}

// recordingAttester responds to the first challenge with its TEE's
// evidence and to every later one with that same evidence.
type recordingAttester struct {
	attest.Attester
	mu    sync.Mutex
	first *attest.Evidence
}

func (a *recordingAttester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.first != nil {
		return a.first, nil
	}
	ev, err := a.Attester.Attest(ctx, reportData)
	a.first = ev
	return ev, err
}

// A client response recorded on one connection fails on another, because
// it binds the first connection's exporter and nonce.
func TestMutualChallengeRejectsReplayedResponse(t *testing.T) {
	p := startMutual(t)
	recorder := &recordingAttester{Attester: p.clientTEE}
	cfg := ClientConfig(p.v, p.clientCerts, true)

	conn, err := DialMutual(context.Background(), "tcp", p.addr, cfg, p.v, recorder, true)
	if err != nil {
		t.Fatalf("first connection: %v", err)
	}
	conn.Close()
	if o := nextOutcome(t, p.outcomes); o.err != nil {
		t.Fatalf("server on the first connection: %v", o.err)
	}

	_, err = DialMutual(context.Background(), "tcp", p.addr, cfg, p.v, recorder, true)
	if !errors.Is(err, ErrChallengeRejected) {
		t.Errorf("client error %v, want ErrChallengeRejected", err)
	}
	o := nextOutcome(t, p.outcomes)
	if !errors.Is(o.err, attest.ErrBinding) || !strings.Contains(o.err.Error(), "the server's nonce") {
		t.Errorf("server error %v, want a binding error that names the server's nonce", o.err)
	}
}

// A client that knows only ProtoChallenge still connects to a server that
// offers ProtoMutualChallenge, and is not challenged.
func TestMutualChallengeOldClient(t *testing.T) {
	p := startMutual(t)
	cfg := ClientConfig(p.v, p.clientCerts, true)
	cfg.NextProtos = slices.DeleteFunc(cfg.NextProtos, func(s string) bool { return s == ProtoMutualChallenge })

	conn, err := Dial(context.Background(), "tcp", p.addr, cfg, p.v, true)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().NegotiatedProtocol; got != ProtoChallenge {
		t.Errorf("negotiated %q, want %q", got, ProtoChallenge)
	}
	if conn.Fresh == nil {
		t.Error("the old client holds no fresh evidence of the server")
	}
	if conn.FreshAccepted {
		t.Error("FreshAccepted is true although the server did not challenge the client")
	}
	o := nextOutcome(t, p.outcomes)
	if o.err != nil || o.fresh != nil {
		t.Errorf("server: fresh claims %v, error %v; want neither", o.fresh, o.err)
	}
	if got := echo(t, conn); got != "echo: hello\n" {
		t.Errorf("echo %q", got)
	}
}

// Dial, which has no attester, fails a connection whose server wants to
// challenge the client, and ServeChallenge fails it on the server.
func TestMutualChallengeNeedsAttesterAndVerifier(t *testing.T) {
	p := startMutual(t)
	_, err := Dial(context.Background(), "tcp", p.addr, ClientConfig(p.v, p.clientCerts, true), p.v, true)
	if err == nil || !strings.Contains(err.Error(), "DialMutual") {
		t.Errorf("Dial error %v, want one that names DialMutual", err)
	}
	nextOutcome(t, p.outcomes)

	serverTEE := &fakeAttester{}
	serverCerts, err := NewCertSource(context.Background(), serverTEE, IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, ServerConfig(serverCerts, NewVerifier(acceptEmulated)), serverTEE)
	if _, err := DialMutual(context.Background(), "tcp", addr, ClientConfig(p.v, p.clientCerts, true), p.v, p.clientTEE, true); err == nil {
		t.Error("a server that runs ServeChallenge completed the mutual challenge")
	}
}

func TestChallengeProtocolOffers(t *testing.T) {
	p := startMutual(t)
	cases := []struct {
		name string
		cfg  *tls.Config
		want []string
	}{
		{"server", ServerConfig(p.clientCerts, nil, "http/1.1"), []string{ProtoChallenge, "http/1.1"}},
		{"mutual server", ServerConfig(p.clientCerts, p.v, "http/1.1"), []string{ProtoMutualChallenge, ProtoChallenge, "http/1.1"}},
		{"client", ClientConfig(p.v, nil, true, "http/1.1"), []string{ProtoChallenge, "http/1.1"}},
		{"mutual client", ClientConfig(p.v, p.clientCerts, true, "http/1.1"), []string{ProtoMutualChallenge, ProtoChallenge, "http/1.1"}},
		{"mutual client without challenge", ClientConfig(p.v, p.clientCerts, false, "http/1.1"), []string{"http/1.1"}},
	}
	for _, c := range cases {
		if !slices.Equal(c.cfg.NextProtos, c.want) {
			t.Errorf("%s offers %q, want %q", c.name, c.cfg.NextProtos, c.want)
		}
	}
}

// rawMutualClient completes the handshake with the client certificate of
// p, negotiates ProtoMutualChallenge and reads the server's response and
// challenge, so that a test can send its own client response.
func rawMutualClient(t *testing.T, p *mutualPeers) *tls.Conn {
	t.Helper()
	cfg := ClientConfig(p.v, p.clientCerts, true)
	conn, err := tls.Dial("tcp", p.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := conn.Write(append([]byte("CRC2"), make([]byte, challengeNonceSize)...)); err != nil {
		t.Fatal(err)
	}
	if _, err := readResponse(conn, maxResponseSize, RoleServer); err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 4+challengeNonceSize)
	if _, err := io.ReadFull(conn, msg); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(msg, []byte("CRS2")) {
		t.Fatalf("server challenge %x does not start with CRS2", msg)
	}
	return conn
}

// The server rejects client responses that are too long, empty, not the
// expected CBOR map or of another format than the client certificate's
// evidence, and sends the rejected verdict.
func TestMutualChallengeRejectsMalformedResponse(t *testing.T) {
	p := startMutual(t)
	cbor, err := encMode.Marshal(map[string]any{"format": fakeFormat})
	if err != nil {
		t.Fatal(err)
	}
	otherFormat, err := encMode.Marshal(map[string]any{"format": "ratls", "evidence": []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		message   []byte
		serverErr string
	}{
		{"too long", binary.BigEndian.AppendUint32(nil, maxClientResponseSize+1), "length 262145 is outside 1 to 262144"},
		{"empty", binary.BigEndian.AppendUint32(nil, 0), "length 0 is outside"},
		{"not CBOR", append(binary.BigEndian.AppendUint32(nil, 3), "abc"...), "not the expected CBOR map"},
		{"no evidence", append(binary.BigEndian.AppendUint32(nil, uint32(len(cbor))), cbor...), "evidence is empty"},
		{"other format", append(binary.BigEndian.AppendUint32(nil, uint32(len(otherFormat))), otherFormat...), `has the format "ratls"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := rawMutualClient(t, p)
			if _, err := conn.Write(c.message); err != nil {
				t.Fatal(err)
			}
			verdict := make([]byte, 1)
			if _, err := io.ReadFull(conn, verdict); err != nil {
				t.Fatalf("reading the verdict: %v", err)
			}
			if verdict[0] != verdictRejected {
				t.Errorf("verdict %#x, want %#x (rejected)", verdict[0], verdictRejected)
			}
			o := nextOutcome(t, p.outcomes)
			if o.err == nil || !strings.Contains(o.err.Error(), c.serverErr) {
				t.Errorf("server error %v, want one containing %q", o.err, c.serverErr)
			}
		})
	}
}

// A client response that ends before its announced length is rejected
// without a verdict.
func TestMutualChallengeTruncatedResponse(t *testing.T) {
	p := startMutual(t)
	conn := rawMutualClient(t, p)
	if _, err := conn.Write(append(binary.BigEndian.AppendUint32(nil, 100), "short"...)); err != nil {
		t.Fatal(err)
	}
	conn.CloseWrite()
	o := nextOutcome(t, p.outcomes)
	if !errors.Is(o.err, io.ErrUnexpectedEOF) || !strings.Contains(o.err.Error(), "after 5 of 100 bytes") {
		t.Errorf("server error %v, want an unexpected EOF after 5 of 100 bytes", o.err)
	}
}
