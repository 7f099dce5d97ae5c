package attest

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// VerifyChain builds a chain from leaf through intermediates to one of
// roots and checks every signature and every certificate's validity window
// at the time at. Extended key usages are not checked, because attestation
// certificates rarely carry them. The error is an ErrChain error that names
// the certificate and the reason: an expired certificate, or an issuer found
// neither among the intermediates nor among the trusted roots.
func VerifyChain(leaf *x509.Certificate, intermediates, roots []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	if len(roots) == 0 {
		return nil, Errorf(ErrChain, "certificate chain", "no trusted root certificate").
			WithFix("pass the vendor root with --collateral or --trust-anchor")
	}
	for _, c := range append([]*x509.Certificate{leaf}, intermediates...) {
		if err := checkValidity(c, at); err != nil {
			return nil, err
		}
	}
	rootPool := x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	interPool := x509.NewCertPool()
	for _, c := range intermediates {
		interPool.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         rootPool,
		Intermediates: interPool,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, chainError(leaf, intermediates, roots, err)
	}
	chain := chains[0]
	for _, c := range chain {
		if err := checkValidity(c, at); err != nil {
			return nil, err
		}
	}
	return chain, nil
}

// checkValidity rejects a certificate outside its validity window at at.
func checkValidity(c *x509.Certificate, at time.Time) error {
	switch {
	case at.After(c.NotAfter):
		return Errorf(ErrChain, "certificate chain", "certificate %q expired at %s (notAfter), before the verification time %s",
			c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339Nano)).
			WithFix("verify fresh evidence, or pass the time the evidence was produced with --at")
	case at.Before(c.NotBefore):
		return Errorf(ErrChain, "certificate chain", "certificate %q is not yet valid: notBefore %s is after the verification time %s",
			c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339Nano)).
			WithFix("check the verification time given with --at and the system clock")
	}
	return nil
}

// chainError explains a failed chain build: it follows issuers from the leaf
// through the intermediates and names the first issuer it cannot find.
func chainError(leaf *x509.Certificate, intermediates, roots []*x509.Certificate, err error) error {
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		return &Error{Kind: ErrChain, Field: "certificate chain", Reason: "chain verification failed", Err: err}
	}
	top := leaf
	for range len(intermediates) + 1 {
		next := findIssuer(top, intermediates)
		if next == nil || next == top {
			break
		}
		top = next
	}
	names := make([]string, len(roots))
	for i, r := range roots {
		names[i] = fmt.Sprintf("%q", r.Subject.String())
	}
	issuer := top.Issuer.String()
	for _, r := range roots {
		if string(r.RawSubject) == string(top.RawIssuer) {
			return Errorf(ErrChain, "certificate chain", "certificate %q names the trusted root %q as issuer, but its signature does not verify under that root",
				top.Subject.String(), issuer).WithFix("pass the root that issued this chain")
		}
	}
	if top.CheckSignatureFrom(top) == nil {
		return Errorf(ErrChain, "certificate chain", "the chain ends at the root %q, which is not a trusted root (trusted: %s)",
			top.Subject.String(), strings.Join(names, ", ")).
			WithFix("pass the vendor root with --collateral or --trust-anchor; a root carried in the evidence is never trusted by itself")
	}
	return Errorf(ErrChain, "certificate chain", "no intermediate or trusted root certificate issued %q: its issuer %q is missing (trusted roots: %s)",
		top.Subject.String(), issuer, strings.Join(names, ", ")).
		WithFix("supply the complete certificate chain, including every intermediate CA, and the vendor root")
}

// findIssuer returns the certificate among candidates whose subject is c's
// issuer and whose key verifies c's signature, or nil.
func findIssuer(c *x509.Certificate, candidates []*x509.Certificate) *x509.Certificate {
	for _, p := range candidates {
		if string(p.RawSubject) == string(c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}
