package workload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cloister-dev/cloister/ratls"
)

// handshakeTimeout bounds the TLS handshake and the freshness challenge of
// one connection.
const handshakeTimeout = 30 * time.Second

// ServerConfig configures Serve.
type ServerConfig struct {
	// TEE supplies the evidence for the RA-TLS certificate and the
	// freshness challenge.
	TEE *TEE
	// Parties are the client keys the server accepts; a client whose key
	// is not listed fails the TLS handshake.
	Parties []Party
	// Handler serves the workload's HTTP API. PartyFromContext returns
	// the caller.
	Handler http.Handler
	// Log receives connection errors; nil means slog.Default().
	Log *slog.Logger
}

type partyKey struct{}

// PartyFromContext returns the party that sent the request whose context
// is ctx, as identified by its TLS client key.
func PartyFromContext(ctx context.Context) (Party, bool) {
	p, ok := ctx.Value(partyKey{}).(Party)
	return p, ok
}

// WithParty returns a context that carries p, for handlers called outside
// Serve, such as in tests and benchmarks.
func WithParty(ctx context.Context, p Party) context.Context {
	return context.WithValue(ctx, partyKey{}, p)
}

// Serve serves cfg.Handler over RA-TLS on ln until ctx is cancelled. Each
// connection completes the TLS handshake, which verifies the client key
// against cfg.Parties, and the freshness challenge, when the client asks
// for it, before any HTTP request is read.
func Serve(ctx context.Context, ln net.Listener, cfg ServerConfig) error {
	if cfg.TEE == nil || cfg.Handler == nil {
		return errors.New("workload: Serve needs a TEE and a Handler")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	certs, err := ratls.NewCertSource(ctx, cfg.TEE.Attester, ratls.IssueOptions{})
	if err != nil {
		return fmt.Errorf("issuing the workload's RA-TLS certificate: %w", err)
	}
	tlsConfig, byKey, err := serverTLSConfig(certs, cfg.Parties)
	if err != nil {
		return err
	}

	al := &attestedListener{Listener: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{
		Handler:           cfg.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if ac, ok := c.(*attestedConn); ok {
				return WithParty(ctx, ac.party)
			}
			return ctx
		},
	}
	go al.acceptLoop(ctx, tlsConfig, byKey, cfg.TEE, log)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	err = srv.Serve(al)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serverTLSConfig presents the RA-TLS certificates of certs and requires a
// client certificate whose key is one of parties.
func serverTLSConfig(certs *ratls.CertSource, parties []Party) (*tls.Config, map[Digest]Party, error) {
	byKey := make(map[Digest]Party, len(parties))
	for _, p := range parties {
		if _, dup := byKey[p.KeyHash]; dup {
			return nil, nil, fmt.Errorf("workload: parties %q and %q have the same key %s", byKey[p.KeyHash].Name, p.Name, p.KeyHash)
		}
		byKey[p.KeyHash] = p
	}
	cfg := ratls.ServerConfig(certs, nil)
	// RequireAnyClientCert makes the client prove possession of its key
	// in the handshake; the key, not a CA, identifies the party.
	cfg.ClientAuth = tls.RequireAnyClientCert
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		_, err := identifyParty(raw, byKey)
		return err
	}
	return cfg, byKey, nil
}

func identifyParty(raw [][]byte, byKey map[Digest]Party) (Party, error) {
	if len(raw) == 0 {
		return Party{}, errors.New("workload: the client presented no certificate; a party must present its key")
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return Party{}, fmt.Errorf("workload: invalid client certificate: %w", err)
	}
	h, err := KeyHash(cert.PublicKey)
	if err != nil {
		return Party{}, err
	}
	p, ok := byKey[h]
	if !ok {
		return Party{}, fmt.Errorf("workload: the client key %s is not a party of this manifest", h)
	}
	return p, nil
}

// attestedConn is a connection whose handshake and challenge are done.
// It is not a *tls.Conn on purpose: net/http would otherwise close a
// connection that negotiated the challenge protocol, which it does not
// know.
type attestedConn struct {
	net.Conn
	party Party
}

// attestedListener hands net/http connections that completed the TLS
// handshake and the challenge. Handshakes run in their own goroutines so
// that a slow client does not hold up the others.
type attestedListener struct {
	net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   error
}

func (l *attestedListener) acceptLoop(ctx context.Context, cfg *tls.Config, byKey map[Digest]Party, tee *TEE, log *slog.Logger) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			l.stop(err)
			return
		}
		go func() {
			conn, err := handshake(ctx, raw, cfg, byKey, tee)
			if err != nil {
				log.Warn("workload: connection rejected", "remote", raw.RemoteAddr().String(), "err", err)
				raw.Close()
				return
			}
			select {
			case l.conns <- conn:
			case <-l.done:
				conn.Close()
			}
		}()
	}
}

func handshake(ctx context.Context, raw net.Conn, cfg *tls.Config, byKey map[Digest]Party, tee *TEE) (*attestedConn, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	conn := tls.Server(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	if err := ratls.ServeChallenge(ctx, conn, tee.Attester); err != nil {
		return nil, err
	}
	// The handshake accepted the key; this lookup runs again to carry
	// the party to the handler.
	var certs [][]byte
	for _, c := range conn.ConnectionState().PeerCertificates {
		certs = append(certs, c.Raw)
	}
	party, err := identifyParty(certs, byKey)
	if err != nil {
		return nil, err
	}
	return &attestedConn{Conn: conn, party: party}, nil
}

func (l *attestedListener) stop(err error) {
	l.once.Do(func() {
		l.err = err
		close(l.done)
	})
}

// Accept returns the next attested connection.
func (l *attestedListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close closes the underlying listener and stops Accept.
func (l *attestedListener) Close() error {
	err := l.Listener.Close()
	l.stop(net.ErrClosed)
	return err
}
