package ratls

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// DefaultMaxAge is the oldest certificate evidence a peer verifier
// accepts by default: the default lifetime plus a margin for clock skew.
const DefaultMaxAge = DefaultLifetime + 5*time.Minute

// clockSkew is how far in the future an issuance time may lie.
const clockSkew = time.Minute

// maxCacheEntries bounds the verification cache.
const maxCacheEntries = 4096

// VerifyOptions configure how a Verifier judges a peer's certificate.
type VerifyOptions struct {
	// Attest holds the trust anchors and collateral for the evidence
	// verifiers. Its At, Nonce and MaxAge fields are ignored: a peer is
	// verified now, and its freshness comes from the issuance time, bounded
	// by MaxAge below, and the challenge.
	Attest attest.Options
	// Appraise is the appraisal of the verified claims; the zero value is
	// the strict default (no debug, no emulated TEE).
	Appraise appraise.Options
	// Policy, when set, is called with claims that passed the appraisal,
	// and a decision that is not accepted rejects the peer with its
	// reasons. An error rejects the peer too. The Rego policy engine
	// (policy.Engine.Appraise) fits here.
	Policy func(context.Context, *attest.Claims) (*appraise.Decision, error)
	// MaxAge is the oldest accepted evidence, measured from the attested
	// issuance time; zero means DefaultMaxAge.
	MaxAge time.Duration
	// AllowUndated accepts certificates without an attested issuance time
	// (Gramine and Open Enclave layouts). Their freshness then rests on
	// the challenge alone, or on nothing when there is none.
	AllowUndated bool
	// Timeout bounds one verification; zero means 30 seconds.
	Timeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Verifier verifies RA-TLS peers and caches accepted results per
// certificate (by SHA-256 fingerprint) until the evidence would be too
// old, so repeated handshakes with the same certificate cost one hash and
// one map lookup. It is safe for concurrent use.
type Verifier struct {
	opts VerifyOptions

	mu    sync.Mutex
	cache map[[32]byte]cacheEntry
}

type cacheEntry struct {
	result *PeerResult
	until  time.Time
}

// PeerResult is an accepted verification of a peer certificate.
type PeerResult struct {
	Certificate *x509.Certificate
	Claims      *attest.Claims
	Evidence    *CertEvidence
	Rule        BindingRule
	// IssuedAt is the attested issuance time, zero for undated layouts.
	IssuedAt time.Time
	Role     Role
}

// NewVerifier returns a Verifier with options o.
func NewVerifier(o VerifyOptions) *Verifier {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Verifier{opts: o, cache: map[[32]byte]cacheEntry{}}
}

func (v *Verifier) now() time.Time {
	if v.opts.Now != nil {
		return v.opts.Now()
	}
	return time.Now()
}

// RejectionError is a rejected peer. It keeps the verified claims, when
// the evidence's signatures verified, so that the rejection can show what
// was proven and what failed.
type RejectionError struct {
	Result *appraise.Result
	// Certificate is the rejected peer certificate, when there was one.
	Certificate *x509.Certificate
}

func (e *RejectionError) Error() string { return "ratls: peer rejected: " + e.Result.Error.Error() }
func (e *RejectionError) Unwrap() error { return e.Result.Error }

func reject(format string, claims *attest.Claims, reasons []appraise.Reason, err error) *RejectionError {
	return &RejectionError{Result: &appraise.Result{Verdict: appraise.Reject, Format: format, Claims: claims, Reasons: reasons, Error: err}}
}

// VerifyPeer verifies cert as the certificate of a peer in the given role.
// It returns a *RejectionError for every rejection.
func (v *Verifier) VerifyPeer(ctx context.Context, cert *x509.Certificate, role Role) (*PeerResult, error) {
	res, err := v.verifyPeer(ctx, cert, role)
	var rej *RejectionError
	if errors.As(err, &rej) {
		rej.Certificate = cert
	}
	return res, err
}

func (v *Verifier) verifyPeer(ctx context.Context, cert *x509.Certificate, role Role) (*PeerResult, error) {
	now := v.now()
	key := sha256.Sum256(cert.Raw)
	if res, ok := v.cached(key, now); ok {
		if res.Role != role && res.Role != "" {
			return nil, reject(FormatName, res.Claims, nil, roleError(res.Role, role))
		}
		return res, nil
	}

	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	vo := v.opts.Attest
	vo.At, vo.Nonce, vo.MaxAge = now, nil, v.opts.MaxAge
	claims, ce, err := VerifyCertificate(ctx, cert, vo)
	if err != nil {
		return nil, v.rejectWithAppraisal(claims, err)
	}
	res := &PeerResult{Certificate: cert, Claims: claims, Evidence: ce}
	rule, _ := claims.Attributes[AttrBindingRule].(string)
	res.Rule = BindingRule(rule)
	if err := v.checkFreshness(ce, res, now); err != nil {
		return nil, v.rejectWithAppraisal(claims, err)
	}
	if res.Role != "" && res.Role != role {
		return nil, v.rejectWithAppraisal(claims, roleError(res.Role, role))
	}
	if err := v.appraise(ctx, claims); err != nil {
		return nil, err
	}
	v.store(key, res, v.cacheUntil(cert, res, now))
	return res, nil
}

// rejectWithAppraisal builds a rejection that also lists the appraisal's
// reasons, so that a binding failure on debug evidence names both.
func (v *Verifier) rejectWithAppraisal(claims *attest.Claims, err error) *RejectionError {
	var reasons []appraise.Reason
	if claims != nil {
		reasons = appraise.Appraise(claims, v.opts.Appraise).Reasons
	}
	return reject(FormatName, claims, reasons, err)
}

func (v *Verifier) appraise(ctx context.Context, claims *attest.Claims) error {
	d := appraise.Appraise(claims, v.opts.Appraise)
	if !d.Accepted {
		return reject(FormatName, claims, d.Reasons, d.Err())
	}
	if v.opts.Policy != nil {
		pd, err := v.opts.Policy(ctx, claims)
		if err != nil {
			return reject(FormatName, claims, nil, &attest.Error{Kind: attest.ErrAppraisal, Field: "policy",
				Reason: "the policy could not be evaluated, so the peer is rejected", Err: err})
		}
		if pd == nil {
			return reject(FormatName, claims, nil, &attest.Error{Kind: attest.ErrAppraisal, Field: "policy",
				Reason: "the policy returned no decision, so the peer is rejected"})
		}
		if !pd.Accepted {
			return reject(FormatName, claims, pd.Reasons, pd.Err())
		}
	}
	return nil
}

func roleError(got, want Role) error {
	return attest.Errorf(attest.ErrBinding, "claims.role", "the peer presented a certificate issued for the %s role where a %s is expected; a certificate reflected from the other end is rejected", got, want).
		WithValues(string(got), string(want))
}

// checkFreshness requires an attested issuance time no older than MaxAge
// and not in the future, unless undated certificates are allowed.
// VerifyCertificate has already rejected older evidence with the same
// MaxAge, so the age case here is a second line of defense.
func (v *Verifier) checkFreshness(ce *CertEvidence, res *PeerResult, now time.Time) error {
	if ce.Claims == nil || ce.Claims.Binding != BindingV1 {
		if v.opts.AllowUndated {
			return nil
		}
		return attest.Errorf(attest.ErrBinding, "certificate freshness", "%s evidence carries no attested issuance time, so its age cannot be bounded", ce.Layout).
			WithFix("use a Cloister RA-TLS peer, or accept undated evidence explicitly (AllowUndated)")
	}
	res.IssuedAt = time.Unix(ce.Claims.IssuedAt, 0).UTC()
	res.Role = ce.Claims.Role
	age := now.Sub(res.IssuedAt)
	switch {
	case age < -clockSkew:
		return attest.Errorf(attest.ErrBinding, "claims.iat", "the evidence is issued %s in the future", (-age).Round(time.Second)).
			WithFix("check the clocks of both ends")
	case age > v.opts.MaxAge:
		return attest.Errorf(attest.ErrBinding, "claims.iat", "the evidence is stale: issued at %s, %s ago; the maximum age is %s",
			res.IssuedAt.Format(time.RFC3339), age.Round(time.Second), v.opts.MaxAge).
			WithFix("the peer must renew its certificate; if it does not, it may have lost its TEE")
	}
	return nil
}

// cacheUntil returns when a verified certificate must be verified again:
// at its notAfter, or once its evidence exceeds MaxAge. Undated evidence
// counts from now, so that collateral and revocation changes still reach
// a certificate with a far notAfter.
func (v *Verifier) cacheUntil(cert *x509.Certificate, res *PeerResult, now time.Time) time.Time {
	issued := res.IssuedAt
	if issued.IsZero() {
		issued = now
	}
	return minTime(cert.NotAfter, issued.Add(v.opts.MaxAge))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (v *Verifier) cached(key [32]byte, now time.Time) (*PeerResult, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.cache[key]
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		delete(v.cache, key)
		return nil, false
	}
	return e.result, true
}

func (v *Verifier) store(key [32]byte, res *PeerResult, until time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= maxCacheEntries {
		now := v.now()
		for k, e := range v.cache {
			if !now.Before(e.until) {
				delete(v.cache, k)
			}
		}
		if len(v.cache) >= maxCacheEntries {
			// Dropping the whole cache costs one verification per live
			// peer, which is cheaper than tracking recency per entry.
			clear(v.cache)
		}
	}
	v.cache[key] = cacheEntry{result: res, until: until}
}

// CacheLen returns the number of cached verifications.
func (v *Verifier) CacheLen() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cache)
}

func (r *PeerResult) String() string {
	return fmt.Sprintf("%s TEE (emulated=%v), measurement %s, %s", r.Claims.TEE, r.Claims.Emulated, r.Claims.Measurement, r.Rule)
}
