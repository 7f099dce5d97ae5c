package snp

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// chain is a verified endorsement chain: VCEK → ASK → ARK or
// VLEK → ASVK → ARK.
type chain struct {
	leaf         *Endorsement
	intermediate *x509.Certificate
	root         *x509.Certificate
}

// intermediateName returns the common name of the AMD key that issues a
// product's VCEKs (the ASK, "SEV-Milan") or VLEKs (the ASVK,
// "SEV-VLEK-Milan").
func intermediateName(kind, product string) string {
	if kind == "VLEK" {
		return "SEV-VLEK-" + product
	}
	return "SEV-" + product
}

// intermediateRole returns "ASK" or "ASVK" for a leaf kind.
func intermediateRole(kind string) string {
	if kind == "VLEK" {
		return "ASVK"
	}
	return "ASK"
}

// chainKey returns the cache key of a chain: its three certificates.
func chainKey(leaf, intermediate, root *x509.Certificate) [32]byte {
	return attest.ChainKey(leaf.Raw, intermediate.Raw, root.Raw)
}

// verifyChain finds the intermediate and root that issued leaf among the
// candidates and checks every signature, every certificate's name and CA
// flag, and every validity window at at.
func (v *Verifier) verifyChain(leaf *Endorsement, intermediates, roots []*x509.Certificate, at time.Time) (*chain, error) {
	kind, product := leaf.Kind, leaf.Product
	wantIssuer := intermediateName(kind, product)
	if got := leaf.Cert.Issuer.CommonName; got != wantIssuer {
		return nil, attest.Errorf(attest.ErrChain, kind+" issuer", "the %s certificate was issued by %s, but a %s %s is issued by the %s %s", kind, got, product, kind, intermediateRole(kind), wantIssuer).
			WithFix(fmt.Sprintf("pass the %s certificate that matches the report's SIGNING_KEY (%s) with its %s", kind, kind, intermediateRole(kind)))
	}

	var candidates []*x509.Certificate
	for _, inter := range intermediates {
		if inter.Subject.CommonName == wantIssuer && bytes.Equal(inter.RawSubject, leaf.Cert.RawIssuer) {
			candidates = append(candidates, inter)
		}
	}

	// A chain verified before, at a time inside its window, needs no
	// signature check: the cache key covers every certificate's bytes.
	for _, inter := range candidates {
		for _, root := range roots {
			if bytes.Equal(root.RawSubject, inter.RawIssuer) && v.cachedChain(chainKey(leaf.Cert, inter, root), at) {
				return &chain{leaf: leaf, intermediate: inter, root: root}, nil
			}
		}
	}

	var sigErr error
	for _, inter := range candidates {
		if err := checkIssued(leaf.Cert, inter); err != nil {
			sigErr = err
			continue
		}
		for _, root := range roots {
			if !bytes.Equal(root.RawSubject, inter.RawIssuer) {
				continue
			}
			if err := checkIssued(inter, root); err != nil {
				sigErr = err
				continue
			}
			if err := checkRoot(root, product); err != nil {
				return nil, err
			}
			if err := checkWindows(at, []roleCert{{kind, leaf.Cert}, {intermediateRole(kind), inter}, {"ARK", root}}); err != nil {
				return nil, err
			}
			v.cache.Store(chainKey(leaf.Cert, inter, root), []*x509.Certificate{leaf.Cert, inter, root})
			return &chain{leaf: leaf, intermediate: inter, root: root}, nil
		}
		if sigErr == nil {
			return nil, noRootError(inter, product, roots)
		}
	}
	if sigErr != nil {
		return nil, sigErr
	}
	return nil, attest.Errorf(attest.ErrCollateralMissing, intermediateRole(kind), "no %s named %s that issued the %s was found in the collateral, the report's certificate table or the embedded AMD certificates", intermediateRole(kind), wantIssuer, kind).
		WithFix(fmt.Sprintf("pass the %s chain for %s with --collateral (AMD KDS: /%s/v1/%s/cert_chain)", intermediateRole(kind), product, lowerKind(kind), product))
}

// cachedChain reports whether the chain under key verified before and is
// valid at at. A cached chain skips the RSA signature checks; failures are
// never stored.
func (v *Verifier) cachedChain(key [32]byte, at time.Time) bool {
	_, ok := v.cache.Lookup(key, at)
	return ok
}

func lowerKind(kind string) string {
	if kind == "VLEK" {
		return "vlek"
	}
	return "vcek"
}

// checkIssued verifies child's signature under parent's key. AMD signs
// every certificate of the chain with RSASSA-PSS and SHA-384, so any other
// algorithm is rejected. parent must be a CA: AMD's ARKs, ASKs and ASVKs
// carry basic constraints with cA true and a key usage with keyCertSign,
// both critical.
func checkIssued(child, parent *x509.Certificate) error {
	if child.SignatureAlgorithm != x509.SHA384WithRSAPSS {
		return attest.Errorf(attest.ErrChain, "certificate "+child.Subject.CommonName, "signature algorithm is %v, but AMD signs its SEV-SNP certificates with RSASSA-PSS SHA-384", child.SignatureAlgorithm).
			WithFix("pass the certificate as AMD's KDS issued it")
	}
	if !parent.BasicConstraintsValid || !parent.IsCA {
		return attest.Errorf(attest.ErrChain, "certificate "+parent.Subject.CommonName, "the issuer of %s is not a CA: its basic constraints are missing or have cA false", child.Subject.CommonName).
			WithFix("pass the AMD certificate chain as AMD's KDS serves it (/vcek/v1/<product>/cert_chain or /vlek/v1/<product>/cert_chain)")
	}
	if parent.KeyUsage != 0 && parent.KeyUsage&x509.KeyUsageCertSign == 0 {
		return attest.Errorf(attest.ErrChain, "certificate "+parent.Subject.CommonName, "the key usage of the issuer of %s lacks keyCertSign, so its key must not sign certificates", child.Subject.CommonName).
			WithFix("pass the AMD certificate chain as AMD's KDS serves it (/vcek/v1/<product>/cert_chain or /vlek/v1/<product>/cert_chain)")
	}
	if err := parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature); err != nil {
		return &attest.Error{Kind: attest.ErrChain, Field: "certificate " + child.Subject.CommonName,
			Reason: fmt.Sprintf("signature does not verify under %s (SHA-256 %s)", parent.Subject.CommonName, fingerprint(parent)),
			Err:    err, Fix: "pass the certificates of one chain; a certificate of another product or signing key does not verify"}
	}
	return nil
}

// checkRoot checks the root's name and self-signature.
func checkRoot(root *x509.Certificate, product string) error {
	if want := "ARK-" + product; root.Subject.CommonName != want {
		return attest.Errorf(attest.ErrChain, "ARK", "root %s is not the %s ARK (%s)", root.Subject.CommonName, product, want).
			WithFix(fmt.Sprintf("trust the %s ARK, or pass the chain of the product that the VCEK or VLEK names", product))
	}
	if err := root.CheckSignature(root.SignatureAlgorithm, root.RawTBSCertificate, root.Signature); err != nil {
		return &attest.Error{Kind: attest.ErrChain, Field: "ARK", Reason: fmt.Sprintf("root %s self-signature does not verify", root.Subject.CommonName), Err: err,
			Fix: "pass the ARK as AMD's KDS serves it, unmodified"}
	}
	return nil
}

// roleCert is a certificate with its role in the chain (VCEK, ASK, ARK).
type roleCert struct {
	role string
	cert *x509.Certificate
}

// checkWindows requires every certificate to be valid at at.
func checkWindows(at time.Time, certs []roleCert) error {
	for _, rc := range certs {
		role, cert := rc.role, rc.cert
		switch {
		case at.After(cert.NotAfter):
			return attest.Errorf(attest.ErrChain, role+" notAfter", "%s certificate %s expired: notAfter %s is before the verification time %s", role, cert.Subject.CommonName, rfc3339(cert.NotAfter), rfc3339(at)).
				WithFix(fmt.Sprintf("fetch a current %s certificate from AMD's KDS, or verify at a time inside its validity window with --at", role))
		case at.Before(cert.NotBefore):
			return attest.Errorf(attest.ErrChain, role+" notBefore", "%s certificate %s is not yet valid: notBefore %s is after the verification time %s", role, cert.Subject.CommonName, rfc3339(cert.NotBefore), rfc3339(at)).
				WithFix("check the clock, or verify at a time inside the certificate's validity window with --at")
		}
	}
	return nil
}

// noRootError explains why none of roots, the trusted roots, issued inter.
func noRootError(inter *x509.Certificate, product string, roots []*x509.Certificate) error {
	names := make([]string, len(roots))
	for i, r := range roots {
		names[i] = strconv.Quote(r.Subject.String())
	}
	e := attest.Errorf(attest.ErrChain, "ARK", "no trusted root issued %s (issuer %s; trusted roots: %s)",
		inter.Subject.CommonName, inter.Issuer.String(), strings.Join(names, ", "))
	if attest.IsEmulated(inter) {
		return e.WithFix("this chain comes from an emulated SEV-SNP guest; pass its development root with --trust-anchor, unscoped or as snp=FILE (it is never trusted from the collateral)")
	}
	return e.WithFix(fmt.Sprintf("pass the AMD %s ARK, or remove the self-signed roots named above from --collateral and --trust-anchor or scope them to their own TEE (as in tdx=FILE), so that the embedded AMD roots apply", product))
}

func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return fmt.Sprintf("%x", sum[:8])
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
