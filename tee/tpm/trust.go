package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"github.com/google/go-tpm-tools/server"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// trustedAK is an attestation key together with the reason to trust it.
type trustedAK struct {
	key    crypto.PublicKey
	anchor attest.TrustAnchorRef
	chain  []*x509.Certificate
	cert   *x509.Certificate
	pinned bool
}

// oidSubjectAltName is the X.509 SubjectAltName extension.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// establishAK decides whether the evidence's AK is trusted: it equals a
// public key the caller supplied (the pinned AK), or its certificate
// chains to a trusted root at the verification time. The AK inside the
// evidence never counts by itself. A caller that pins AKs names the TPMs
// it trusts, so pins displace the embedded roots as caller roots do. A
// certificate then counts only under a root the caller supplied.
func establishAK(ctx context.Context, ev *Evidence, opts attest.Options, c *attest.Claims) (*trustedAK, error) {
	q := collateral.Query{TEE: string(attest.TEETPM), At: opts.Time()}
	set, err := opts.CollateralFor(ctx, q)
	if err != nil {
		return nil, err
	}
	pinned := callerKeys(set, opts.Anchors(string(attest.TEETPM)))
	if ak, ok := matchPinned(ev.AKKey, pinned); ok {
		c.Skip(CheckAKCertificate, false, "the AK is pinned by a public key the caller supplied, so no certificate is needed")
		return ak, nil
	}
	if len(ev.AKCert) == 0 && len(pinned) == 0 {
		return nil, attest.Errorf(attest.ErrCollateralMissing, "AK", "the evidence carries no AK certificate and no pinned AK public key was supplied, so the attestation key is not trusted").
			WithFix("pass the AK's DER SubjectPublicKeyInfo, or the root that certifies the AK, with --collateral")
	}
	embedded := server.GceEKRoots
	if len(pinned) > 0 {
		embedded = nil
		roots, err := attest.Roots(ctx, opts, q, nil)
		if err != nil {
			return nil, err
		}
		if len(ev.AKCert) == 0 || len(roots) == 0 {
			reason := "the evidence carries no AK certificate"
			if len(ev.AKCert) > 0 {
				reason = "the caller supplied no root for its AK certificate, and the embedded Google roots are not used when AKs are pinned"
			}
			return nil, attest.Errorf(attest.ErrChain, "AK", "the attestation key is not the pinned key the caller supplied, and %s", reason).
				WithValues(spkiFingerprint(ev.AKKey), spkiFingerprint(pinned[0].PublicKey)).
				WithFix("pin the AK of this TPM (its DER SubjectPublicKeyInfo), or pass the root that certifies its AK, with --collateral")
		}
	}
	return certifiedAK(ctx, ev, opts, set, embedded, c)
}

// callerKeys returns the public keys the caller supplied in the
// collateral and the trust anchors.
func callerKeys(set, anchors *collateral.Set) []*collateral.Item {
	var out []*collateral.Item
	out = append(out, anchors.OfKind(collateral.KindPublicKey)...)
	out = append(out, set.OfKind(collateral.KindPublicKey)...)
	return out
}

func matchPinned(key crypto.PublicKey, pinned []*collateral.Item) (*trustedAK, bool) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, false
	}
	for _, it := range pinned {
		if bytes.Equal(der, it.Raw) {
			sum := sha256.Sum256(der)
			name := "pinned AK"
			if it.Source != "" {
				name += " from " + it.Source
			}
			return &trustedAK{key: key, pinned: true,
				anchor: attest.TrustAnchorRef{Kind: attest.AnchorCallerKey, Name: name, SHA256: sum[:]}}, true
		}
	}
	return nil, false
}

// certifiedAK verifies the AK certificate to the caller's roots, or else to
// embedded, as attest.Roots chooses them. The intermediates come from the
// evidence, the collateral and Google's embedded vTPM intermediates. It
// then checks that the certificate certifies the AK that signed the quotes.
func certifiedAK(ctx context.Context, ev *Evidence, opts attest.Options, set *collateral.Set, embedded []*x509.Certificate, c *attest.Claims) (*trustedAK, error) {
	cert, err := x509.ParseCertificate(ev.AKCert)
	if err != nil {
		return nil, attest.Malformed("attestation.ak_cert", "is not a DER X.509 certificate", err)
	}
	// TCG EK and AK certificates carry the TPM's identity as a
	// directoryName in a critical SubjectAltName. Go reports such a SAN as
	// unhandled because it parses only DNS, e-mail, IP and URI names. The
	// extension restricts nothing a chain check relies on, so it is
	// accepted here, as go-tpm-tools does.
	var unhandled []asn1.ObjectIdentifier
	for _, ext := range cert.UnhandledCriticalExtensions {
		if !ext.Equal(oidSubjectAltName) {
			unhandled = append(unhandled, ext)
		}
	}
	cert.UnhandledCriticalExtensions = unhandled

	roots, err := attest.Roots(ctx, opts, collateral.Query{TEE: string(attest.TEETPM), At: opts.Time()}, embedded)
	if err != nil {
		return nil, err
	}
	rootPool := x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	inter := x509.NewCertPool()
	for i, der := range ev.Intermediates {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, attest.Malformed(fmt.Sprintf("attestation.intermediate_certs[%d]", i), "is not a DER X.509 certificate", err)
		}
		inter.AddCert(ic)
	}
	// Self-signed certificates in the collateral are root candidates,
	// which attest.Roots has judged. Comparing names is enough to leave
	// them out here: a self-issued certificate in the pool cannot lead a
	// chain to a root it is not.
	for _, ic := range set.Certificates() {
		if !bytes.Equal(ic.RawIssuer, ic.RawSubject) {
			inter.AddCert(ic)
		}
	}
	for _, ic := range server.GceEKIntermediates {
		inter.AddCert(ic)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:         rootPool,
		Intermediates: inter,
		CurrentTime:   opts.Time(),
		// An AK certificate carries the TCG AK usage OIDs, not TLS ones.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		c.Fail(CheckAKCertificate, err.Error())
		return nil, &attest.Error{Kind: attest.ErrChain, Field: "attestation.ak_cert", Err: err,
			Reason: fmt.Sprintf("the AK certificate (issuer %q) does not chain to a trusted root at %s", cert.Issuer.String(), opts.Time().UTC().Format("2006-01-02T15:04:05Z")),
			Fix:    "pass the root that certifies this TPM's AK and the intermediate CA that issued it with --collateral"}
	}
	c.Pass(CheckAKCertificate)
	chain := chains[0]
	root := chain[len(chain)-1]
	anchor := attest.DescribeRoot(root, server.GceEKRoots)
	if attest.IsEmulated(root) {
		c.Emulated = true
	}

	if !samePublicKey(cert.PublicKey, ev.AKKey) {
		c.Fail(CheckAKBinding, "the AK certificate certifies another key than the AK public area")
		return nil, attest.Errorf(attest.ErrBinding, "attestation.ak_cert", "the AK certificate certifies another key than the AK that signed the quotes").
			WithValues(spkiFingerprint(ev.AKKey), spkiFingerprint(cert.PublicKey)).
			WithFix("send the AK certificate of the key that made the quotes")
	}
	c.Pass(CheckAKBinding)
	return &trustedAK{key: cert.PublicKey, anchor: anchor, chain: chain, cert: cert}, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	da, errA := x509.MarshalPKIXPublicKey(a)
	db, errB := x509.MarshalPKIXPublicKey(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}

// spkiFingerprint returns "sha256:" and the hex SHA-256 of key's
// SubjectPublicKeyInfo, the form error messages use to name a key.
func spkiFingerprint(key crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return fmt.Sprintf("%T", key)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + attest.Hex(sum[:]).String()
}

// chainInfo summarises the certificates of a verified AK chain by role.
func chainInfo(chain []*x509.Certificate) []attest.CertInfo {
	out := make([]attest.CertInfo, 0, len(chain))
	for i, cert := range chain {
		role := "intermediate CA"
		switch {
		case i == 0:
			role = "AK certificate"
		case i == len(chain)-1:
			role = "root"
		}
		out = append(out, attest.NewCertInfo(role, cert))
	}
	return out
}
