package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ratls"
)

// clientRejectionFix returns the fix logged after a rejected client's
// reason. Evidence that does not belong to the client's certificate or to
// this connection is what a copied certificate and key give, so its fix
// warns against relaxing the flags. Otherwise the verifiers' fixes name the
// flags of cloister verify, which the agent spells with a client- prefix.
func clientRejectionFix(err error) string {
	// Only the challenge's errors have fields that start with "challenge".
	// A binding error of the certificate itself, such as stale evidence,
	// gets the flags' fix.
	var ae *attest.Error
	if errors.As(err, &ae) && ae.Kind == attest.ErrBinding && strings.HasPrefix(ae.Field, "challenge") {
		return "the client's fresh evidence does not match its certificate or this connection: a certificate and key copied out of their TEE give this, and so does a TDX client whose RTMR0 to RTMR2 changed since it issued the certificate; do not relax the --client- flags for it, and investigate the TEE that holds the certificate's key (--client-policy can deny the certificate by attributes.ratls_certificate_sha256)"
	}
	return "the agent reads the client's evidence with --client-trust-anchor, --client-collateral, --client-allow-emulated, --client-allow-debug, --client-allow-undetermined-tcb, --client-measurement, --client-host-data, --client-chip-id, --client-tcb-status, --client-min-tcb, --client-min-tcb-evaluation-data-number, --client-max-vmpl, --client-policy, --client-max-age and --client-allow-undated in place of the flags that the reason names"
}

// handshakeTimeout bounds the TLS handshake and the challenges of one
// connection, so that a client that stops sending keeps its connection
// for at most this long. Such a client holds no challenge slot meanwhile.
const handshakeTimeout = 30 * time.Second

// upstreamDialTimeout bounds the connection to the workload. A loopback
// connection is made at once unless the workload's accept queue is full.
// NOTE: ten seconds is a chosen bound, not a measured one. Tests shorten
// it.
var upstreamDialTimeout = 10 * time.Second

// Proxy accepts RA-TLS connections and forwards their plaintext to the
// workload on loopback, so that the workload needs no TLS or attestation
// code of its own.
type Proxy struct {
	// TLS is the server configuration, from ratls.ServerConfig.
	TLS *tls.Config
	// Attester produces the evidence for the freshness challenge.
	Attester attest.Attester
	// Upstream is the workload's loopback address (host:port).
	Upstream string
	// RequireChallenge closes connections whose client did not negotiate
	// the freshness challenge.
	RequireChallenge bool
	// Clients verifies the client certificates in mutual mode and the
	// fresh evidence of clients that negotiate ratls.ProtoMutualChallenge.
	// It must be the verifier given to ratls.ServerConfig for TLS.
	Clients *ratls.Verifier
	// RequireClientChallenge closes connections whose client did not
	// negotiate ratls.ProtoMutualChallenge, so that a stolen client
	// certificate is useless without a TEE of the same identity. It needs
	// Clients.
	RequireClientChallenge bool
	// MaxChallenges bounds the challenges that attest at the same time,
	// because each one costs a TEE report and clients choose how many to
	// ask for; zero means 4. Further challenges wait.
	MaxChallenges int
	Log           *slog.Logger

	challengeSlots chan struct{}
}

// CheckLoopback requires addr to name a loopback IP address, because the
// plaintext between the proxy and the workload must not leave the machine.
// The name localhost is rejected too: it resolves through /etc/hosts and
// DNS, which in a confidential VM or container the untrusted host may
// supply.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid upstream address %q: %v", addr, err)
	}
	if host == "localhost" {
		return fmt.Errorf("upstream address %q names a host, which resolves through files and DNS that the host machine may control; write 127.0.0.1 or [::1]", addr)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("upstream address %q is not a loopback address: the workload must listen on 127.0.0.1 or ::1 so that plaintext never leaves the machine", addr)
	}
	return nil
}

// Serve accepts connections on ln until ctx is cancelled or ln fails.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	if err := CheckLoopback(p.Upstream); err != nil {
		return err
	}
	if p.RequireClientChallenge && p.Clients == nil {
		return errors.New("agent: requiring the client challenge needs a client verifier (mutual mode); pass --verify-clients with --challenge-clients")
	}
	log := p.log()
	slots := p.MaxChallenges
	if slots <= 0 {
		slots = 4
	}
	p.challengeSlots = make(chan struct{}, slots)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	limiter := &logLimiter{perMinute: 60}
	var exhaustedDelay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if resourcesExhausted(err) {
				// Clients can open connections until the process runs
				// out of file descriptors, and stopping the workload
				// for that would let any client stop it. Accepting
				// resumes once connections close.
				exhaustedDelay = min(max(2*exhaustedDelay, 5*time.Millisecond), time.Second)
				limiter.log(log, "agent: accepting a connection failed, trying again", "err", err, "in", exhaustedDelay.String())
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(exhaustedDelay):
				}
				continue
			}
			return fmt.Errorf("agent: accepting connections: %w", err)
		}
		exhaustedDelay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.handle(ctx, conn); err != nil {
				attrs := []any{"remote", conn.RemoteAddr().String(), "err", err}
				if rej := (*ratls.RejectionError)(nil); errors.As(err, &rej) {
					attrs = append(attrs, "fix", clientRejectionFix(err))
				}
				limiter.log(log, "agent: connection closed", attrs...)
			}
		}()
	}
}

// resourcesExhausted reports whether an Accept error means that the
// process or the system ran out of file descriptors or memory for now.
func resourcesExhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

func (p *Proxy) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

func (p *Proxy) handle(ctx context.Context, raw net.Conn) error {
	conn := tls.Server(raw, p.TLS)
	defer conn.Close()

	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	negotiated := conn.ConnectionState().NegotiatedProtocol
	if err := p.checkProtocol(negotiated); err != nil {
		return err
	}
	if negotiated == ratls.ProtoChallenge || negotiated == ratls.ProtoMutualChallenge {
		// The slot is taken only around the agent's own attestation, so
		// that clients that are slow to send their nonce or their
		// challenge response hold none.
		limited := slotAttester{Attester: p.Attester, slots: p.challengeSlots}
		if _, err := ratls.ServeMutualChallenge(hctx, conn, limited, p.Clients); err != nil {
			if certs := conn.ConnectionState().PeerCertificates; len(certs) > 0 {
				// The operator needs the certificate to revoke it.
				sum := sha256.Sum256(certs[0].Raw)
				return fmt.Errorf("client certificate SHA-256 %x: %w", sum, err)
			}
			return err
		}
	}

	// Without a timeout, a workload whose accept queue is full would make
	// the dial wait for the kernel's SYN retries, about two minutes on
	// Linux by default, while the client waits too.
	d := net.Dialer{Timeout: upstreamDialTimeout}
	up, err := d.DialContext(ctx, "tcp", p.Upstream)
	if err != nil {
		return fmt.Errorf("connecting to the workload at %s: %w", p.Upstream, err)
	}
	defer up.Close()
	return pipe(conn, up.(*net.TCPConn))
}

// checkProtocol rejects a client that skips a challenge that the proxy
// requires.
func (p *Proxy) checkProtocol(negotiated string) error {
	if p.RequireClientChallenge && negotiated != ratls.ProtoMutualChallenge {
		return fmt.Errorf("client negotiated protocol %q, not %s, and the agent requires fresh client evidence (--challenge-clients); "+
			"the client must run a cloister connect that supports %s, with --attest and --challenge (the default), or the agent must run without --challenge-clients",
			negotiated, ratls.ProtoMutualChallenge, ratls.ProtoMutualChallenge)
	}
	if p.RequireChallenge && negotiated != ratls.ProtoChallenge && negotiated != ratls.ProtoMutualChallenge {
		return fmt.Errorf("client did not negotiate the freshness challenge (protocol %q) and the agent requires it", negotiated)
	}
	return nil
}

// slotAttester takes one of slots for each attestation, so that at most
// cap(slots) run at the same time.
type slotAttester struct {
	attest.Attester
	slots chan struct{}
}

func (a slotAttester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	select {
	case a.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to serve the freshness challenge: %w", ctx.Err())
	}
	defer func() { <-a.slots }()
	return a.Attester.Attest(ctx, reportData)
}

// pipe copies both ways until both directions are done, passing each
// end-of-stream on as a half-close.
func pipe(client *tls.Conn, up *net.TCPConn) error {
	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(up, client)
		up.CloseWrite()
		errc <- err
	}()
	go func() {
		_, err := io.Copy(client, up)
		client.CloseWrite()
		errc <- err
	}()
	err1, err2 := <-errc, <-errc
	return errors.Join(ignoreClosed(err1), ignoreClosed(err2))
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// logLimiter bounds the warnings about failed connections, so that a
// client probing the listener cannot flood the log. Each minute it logs
// up to perMinute lines, then one line with the number it suppressed.
type logLimiter struct {
	perMinute int

	mu         sync.Mutex
	start      time.Time
	count      int
	suppressed int
}

func (l *logLimiter) log(log *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.start) >= time.Minute {
		if l.suppressed > 0 {
			log.Warn("agent: connection warnings suppressed", "count", l.suppressed, "since", l.start)
		}
		l.start, l.count, l.suppressed = now, 0, 0
	}
	l.count++
	emit := l.count <= l.perMinute
	if !emit {
		l.suppressed++
	}
	l.mu.Unlock()
	if emit {
		log.Warn(msg, args...)
	}
}
