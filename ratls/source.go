package ratls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"sync"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// CertSource issues RA-TLS certificates and renews them in the background
// before their evidence goes stale. Its methods fit tls.Config's
// GetCertificate and GetClientCertificate. It is safe for concurrent use.
type CertSource struct {
	attester attest.Attester
	opts     IssueOptions
	// renewAfter is the certificate age after which a handshake triggers
	// a background renewal.
	renewAfter time.Duration
	log        *slog.Logger

	mu       sync.Mutex
	current  *tls.Certificate
	previous *tls.Certificate
	renewing bool
}

// NewCertSource issues the first certificate synchronously, so that a
// broken attester fails at start-up rather than on the first connection.
func NewCertSource(ctx context.Context, attester attest.Attester, o IssueOptions) (*CertSource, error) {
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultLifetime
	}
	// Renew at half the lifetime, and at least every half DefaultLifetime,
	// so that a long lifetime does not outlast the DefaultMaxAge of
	// clients.
	renewAfter := min(o.Lifetime/2, DefaultLifetime/2)
	s := &CertSource{attester: attester, opts: o, renewAfter: renewAfter, log: slog.Default()}
	cert, err := Issue(ctx, attester, o)
	if err != nil {
		return nil, err
	}
	s.current = cert
	return s, nil
}

func (s *CertSource) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// Certificate returns the current certificate. Past half its lifetime (or
// half of DefaultLifetime, whichever is shorter) it starts a renewal in the
// background and keeps serving the current one. Past its expiry, or past
// DefaultLifetime, it renews synchronously.
func (s *CertSource) Certificate(ctx context.Context) (*tls.Certificate, error) {
	s.mu.Lock()
	cert := s.current
	now := s.now()
	age := now.Sub(cert.Leaf.NotBefore)
	// A certificate older than DefaultLifetime counts as expired even when
	// its own lifetime is longer, because clients with the default maximum
	// age would reject it.
	expired := !now.Before(cert.Leaf.NotAfter.Add(-time.Minute)) || age >= DefaultLifetime-time.Minute
	if expired {
		s.mu.Unlock()
		return s.Renew(ctx)
	}
	if age >= s.renewAfter && !s.renewing {
		s.renewing = true
		go s.renewInBackground()
	}
	s.mu.Unlock()
	return cert, nil
}

func (s *CertSource) renewInBackground() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Renew(ctx); err != nil {
		s.log.Error("ratls: renewing the attested certificate failed; serving the current one until it expires",
			"attester", s.attester.Name(), "err", err)
	}
}

// Renew issues a new certificate with fresh evidence and makes it current.
func (s *CertSource) Renew(ctx context.Context) (*tls.Certificate, error) {
	cert, err := Issue(ctx, s.attester, s.opts)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renewing = false
	if err != nil {
		return nil, err
	}
	s.previous, s.current = s.current, cert
	s.log.Info("ratls: issued attested certificate", "attester", s.attester.Name(),
		"role", s.role(), "not_after", cert.Leaf.NotAfter)
	return cert, nil
}

func (s *CertSource) role() Role {
	if s.opts.Role == "" {
		return RoleServer
	}
	return s.opts.Role
}

// GetCertificate implements tls.Config.GetCertificate.
func (s *CertSource) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Certificate(hello.Context())
}

// GetClientCertificate implements tls.Config.GetClientCertificate.
func (s *CertSource) GetClientCertificate(info *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return s.Certificate(info.Context())
}

// Attester returns the attester that backs the certificates.
func (s *CertSource) Attester() attest.Attester { return s.attester }

// ownsKey reports whether cert carries the public key of the current or
// the previous certificate of s: a peer presenting it reflects this
// endpoint's own certificate.
func (s *CertSource) ownsKey(cert *x509.Certificate) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, own := range []*tls.Certificate{s.current, s.previous} {
		if own != nil && string(own.Leaf.RawSubjectPublicKeyInfo) == string(cert.RawSubjectPublicKeyInfo) {
			return true
		}
	}
	return false
}
