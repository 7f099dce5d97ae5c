package snp

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// checkRevocation checks the chain against the CRLs in crls: a CRL issued by
// the ARK must not list the ASK or ASVK, and one issued by the ASK or ASVK
// must not list the VCEK or VLEK. Every applicable CRL must verify under its
// issuer and be current at at: a CRL past its nextUpdate is an error, not a
// reason to skip it. It returns the CRLs it applied.
func checkRevocation(c *chain, crls []*x509.RevocationList, at time.Time) ([]*x509.RevocationList, error) {
	pairs := []struct {
		issuer *x509.Certificate
		target *x509.Certificate
		role   string
	}{
		{c.root, c.intermediate, intermediateRole(c.leaf.Kind)},
		{c.intermediate, c.leaf.Cert, c.leaf.Kind},
	}
	var applied []*x509.RevocationList
	for _, crl := range crls {
		for _, p := range pairs {
			if !bytes.Equal(crl.RawIssuer, p.issuer.RawSubject) {
				continue
			}
			if err := checkCRL(crl, p.issuer, at); err != nil {
				return applied, err
			}
			applied = append(applied, crl)
			for _, entry := range crl.RevokedCertificateEntries {
				if entry.SerialNumber != nil && entry.SerialNumber.Cmp(p.target.SerialNumber) == 0 {
					return applied, attest.Errorf(attest.ErrRevoked, p.role, "%s certificate %s (serial %s) is revoked by the CRL of %s since %s",
						p.role, p.target.Subject.CommonName, p.target.SerialNumber.Text(16), p.issuer.Subject.CommonName, rfc3339(entry.RevocationTime)).
						WithFix("the platform's endorsement is no longer trusted by AMD; do not accept this evidence")
				}
			}
		}
	}
	return applied, nil
}

// checkCRL verifies a CRL's signature under issuer, whose key usage must
// allow CRL signing, and its thisUpdate and nextUpdate at at.
func checkCRL(crl *x509.RevocationList, issuer *x509.Certificate, at time.Time) error {
	name := fmt.Sprintf("CRL of %s", issuer.Subject.CommonName)
	if issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return attest.Errorf(attest.ErrChain, name, "the key usage of %s lacks cRLSign, so its key must not sign CRLs", issuer.Subject.CommonName).
			WithFix("pass only CRLs that AMD's KDS serves (/vcek/v1/<product>/crl), which the ARK signs")
	}
	if err := issuer.CheckSignature(crl.SignatureAlgorithm, crl.RawTBSRevocationList, crl.Signature); err != nil {
		return &attest.Error{Kind: attest.ErrSignature, Field: name, Reason: "CRL signature does not verify under its issuer", Err: err,
			Fix: "pass the CRL exactly as AMD's KDS serves it"}
	}
	if at.Before(crl.ThisUpdate) {
		return attest.Errorf(attest.ErrCollateralExpired, name+" thisUpdate", "CRL is not yet valid: thisUpdate %s is after the verification time %s", rfc3339(crl.ThisUpdate), rfc3339(at)).
			WithFix("check the clock, or pass the CRL that was current at the verification time")
	}
	if crl.NextUpdate.IsZero() {
		return attest.Errorf(attest.ErrCollateralExpired, name+" nextUpdate", "CRL has no nextUpdate, so its freshness cannot be judged").
			WithFix("pass the CRL as AMD's KDS serves it")
	}
	if at.After(crl.NextUpdate) {
		return attest.Errorf(attest.ErrCollateralExpired, name+" nextUpdate", "CRL expired: nextUpdate %s is before the verification time %s", rfc3339(crl.NextUpdate), rfc3339(at)).
			WithFix("fetch a current CRL from AMD's KDS (/vcek/v1/<product>/crl) and pass it with --collateral")
	}
	return nil
}

// appliedCRLOf reports whether crls holds a CRL of issuer.
func appliedCRLOf(issuer *x509.Certificate, crls []*x509.RevocationList) bool {
	for _, crl := range crls {
		if bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
			return true
		}
	}
	return false
}
