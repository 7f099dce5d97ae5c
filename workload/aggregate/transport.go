package aggregate

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ratls"
	"github.com/cloister-dev/cloister/tee/snp"
)

// TODO: move the RA-TLS serving, party identification and HOST_DATA
// check onto the shared workload package once it exists; custody and
// modelserve carry the same glue.

// Serve accepts RA-TLS connections on ln and serves h until ctx is
// cancelled. The server presents the attested certificates of certs and
// requires every client to present a TLS certificate, which identifies
// the client as a party (see PartyID); the client certificate needs no
// CA, because the workload's own configuration names the parties it
// accepts. A client that negotiates ratls.ProtoChallenge gets fresh
// evidence over its nonce before the first request.
func Serve(ctx context.Context, ln net.Listener, certs *ratls.CertSource, h http.Handler, log *slog.Logger) error {
	cfg := ratls.ServerConfig(certs, nil, "http/1.1")
	cfg.ClientAuth = tls.RequireAnyClientCert

	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// An empty map keeps HTTP/2 off.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		BaseContext:  func(net.Listener) context.Context { return ctx },
	}
	hl := newHandshakeListener(ctx, ln, cfg, certs.Attester(), log)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	err := srv.Serve(hl)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// PartyID returns the identity of the client of r: the lowercase hex
// SHA-256 of its certificate's SubjectPublicKeyInfo, so that a party
// keeps its identity across certificate renewals with the same key.
func PartyID(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", errors.New("the request carries no TLS client certificate: connect over RA-TLS with a client certificate")
	}
	return SPKIHash(r.TLS.PeerCertificates[0].RawSubjectPublicKeyInfo), nil
}

// SPKIHash returns the lowercase hex SHA-256 of a DER
// SubjectPublicKeyInfo, the form in which Config.Parties names parties.
func SPKIHash(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// CheckHostData requires the evidence of attester to carry want in
// HOST_DATA, so that a client that checks HOST_DATA also checks the
// configuration this workload enforces. Only SEV-SNP has a HOST_DATA
// field that the host sets at launch; other TEEs are rejected.
func CheckHostData(ctx context.Context, attester attest.Attester, want [32]byte) error {
	ev, err := attester.Attest(ctx, make([]byte, 64))
	if err != nil {
		return fmt.Errorf("reading this TEE's evidence: %w", err)
	}
	if ev.Format != "snp" {
		return fmt.Errorf("evidence format %q has no HOST_DATA to bind the configuration to: run the workload in an SEV-SNP guest", ev.Format)
	}
	report, err := snp.ParseReport(ev.Data)
	if err != nil {
		return fmt.Errorf("parsing this TEE's SEV-SNP report: %w", err)
	}
	if report.HostData != want {
		return fmt.Errorf("HOST_DATA is %x, but the configuration digest is %x: launch the guest with HOST_DATA set to the configuration digest", report.HostData, want)
	}
	return nil
}

// NewHTTPClient returns an HTTP client that reaches the workload only
// over RA-TLS verified by v, with fresh evidence over a nonce when
// challenge is true, and that presents cert as the party's certificate.
func NewHTTPClient(v *ratls.Verifier, cert tls.Certificate, challenge bool) *http.Client {
	cfg := ratls.ClientConfig(v, nil, challenge, "http/1.1")
	cfg.Certificates = []tls.Certificate{cert}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ratls.Dial(ctx, network, addr, cfg, v, challenge)
		},
	}}
}

// handshakeListener accepts TCP connections and returns them as TLS
// connections after the handshake and, when the client negotiated it,
// the freshness challenge. Each connection does this in its own
// goroutine, so that a slow client does not hold up the others.
type handshakeListener struct {
	net.Listener
	ready chan net.Conn
	done  chan struct{}
	err   error
}

func newHandshakeListener(ctx context.Context, ln net.Listener, cfg *tls.Config, attester attest.Attester, log *slog.Logger) *handshakeListener {
	l := &handshakeListener{Listener: ln, ready: make(chan net.Conn), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			raw, err := ln.Accept()
			if err != nil {
				l.err = err
				return
			}
			go l.handshake(ctx, tls.Server(raw, cfg), attester, log)
		}
	}()
	return l
}

func (l *handshakeListener) handshake(ctx context.Context, conn *tls.Conn, attester attest.Attester, log *slog.Logger) {
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := conn.HandshakeContext(ctx); err != nil {
		log.Info("workload: TLS handshake failed", "remote", conn.RemoteAddr().String(), "error", err)
		conn.Close()
		return
	}
	if err := ratls.ServeChallenge(ctx, conn, attester); err != nil {
		log.Warn("workload: freshness challenge failed", "remote", conn.RemoteAddr().String(), "error", err)
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	select {
	case l.ready <- handshakenConn{conn}:
	case <-l.done:
		conn.Close()
	}
}

// handshakenConn hides the *tls.Conn type from net/http, which would
// otherwise hand a connection with the challenge protocol negotiated to
// TLSNextProto instead of serving HTTP/1.1 on it. Its ConnectionState
// method still fills in Request.TLS.
type handshakenConn struct{ *tls.Conn }

func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}
