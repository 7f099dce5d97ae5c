package dcap

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// crlKey names a CRL item and the issuer whose key verified it.
type crlKey struct {
	item   *collateral.Item
	issuer *x509.Certificate
}

// findCRL returns the freshest CRL of set issued by issuer and signed by
// its key, or nil when the set has none. A CRL that names the issuer but
// fails the signature check, or is signed with another algorithm than
// ECDSA-SHA256, is an error when no other CRL of the issuer verifies,
// because it shows altered collateral or collateral that is not Intel's.
// name is the CRL's name in errors.
func (v *Verifier) findCRL(set *collateral.Set, name string, issuer *x509.Certificate, at time.Time) (*collateral.Item, error) {
	var badSig, badAlgorithm error
	var best *collateral.Item
	for _, it := range set.OfKind(collateral.KindCRL) {
		if !bytes.Equal(it.CRL.RawIssuer, issuer.RawSubject) {
			continue
		}
		key := crlKey{item: it, issuer: issuer}
		if _, ok := v.crls.get(key); !ok {
			// Intel's CRL profile fixes ECDSA-SHA256, and QVL verifies the
			// CRL signature under the issuer's key read as a P-256 point.
			if it.CRL.SignatureAlgorithm != profileSignature {
				alg := signatureAlgorithmName(it.CRL.SignatureAlgorithm, it.CRL.Raw)
				badAlgorithm = attest.Errorf(attest.ErrSignature, name, "the CRL issued by %q is signed with %s, but Intel's CRL profile requires %s",
					issuer.Subject.CommonName, alg, profileSignature).
					WithValues(alg, profileSignature.String()).
					WithFix(crlSourceFix(it))
				continue
			}
			if err := it.CRL.CheckSignatureFrom(issuer); err != nil {
				badSig = err
				continue
			}
			v.crls.set(key, struct{}{})
		}
		if best == nil || fresher(it.CRL.ThisUpdate, it.CRL.NextUpdate, best.CRL.ThisUpdate, best.CRL.NextUpdate, at) {
			best = it
		}
	}
	if best != nil {
		return best, nil
	}
	if badAlgorithm != nil {
		return nil, badAlgorithm
	}
	if badSig != nil {
		return nil, &attest.Error{Kind: attest.ErrSignature, Field: "CRL", Err: badSig,
			Reason: "the CRL issued by " + issuer.Subject.CommonName + " has an invalid signature",
			Fix:    "fetch the CRL again from Intel PCS"}
	}
	return nil, nil
}

// crlSourceFix is the fix for a CRL that is not Intel's, naming the file
// or address it came from when the collateral records one.
func crlSourceFix(it *collateral.Item) string {
	if it.Source == "" {
		return "fetch the CRL again from Intel PCS"
	}
	return "replace " + it.Source + " with the CRL Intel PCS serves for this issuer"
}

// checkCRLFresh fails when at is outside the CRL's thisUpdate..nextUpdate.
func checkCRLFresh(name string, crl *x509.RevocationList, at time.Time) error {
	if at.Before(crl.ThisUpdate) {
		return attest.Errorf(attest.ErrCollateralExpired, name, "not yet valid: thisUpdate %s is after the verification time %s",
			crl.ThisUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)).
			WithFix("check the verification time (--at)")
	}
	if crl.NextUpdate.IsZero() || at.After(crl.NextUpdate) {
		return attest.Errorf(attest.ErrCollateralExpired, name, "expired: nextUpdate %s is before the verification time %s",
			crl.NextUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)).
			WithFix("fetch a current CRL from Intel PCS")
	}
	return nil
}

func revoked(crl *x509.RevocationList, serial *big.Int) bool {
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}

// checkCRL finds the CRL of issuer, checks its freshness and that none of
// subjects is revoked. A missing CRL is recorded as a required check that
// did not run.
func (v *Verifier) checkCRL(c *attest.Claims, set *collateral.Set, check, name string, issuer *x509.Certificate, subjects []*x509.Certificate, at time.Time) error {
	it, err := v.findCRL(set, name, issuer, at)
	if err != nil {
		c.Fail(check, err.Error())
		return err
	}
	if it == nil {
		c.SkipCollateral(check, "missing "+name+" issued by "+issuer.Subject.CommonName+"; pass it with --collateral")
		return nil
	}
	c.Collateral = append(c.Collateral, attest.CollateralRef{Kind: string(collateral.KindCRL), Name: issuer.Subject.CommonName,
		SHA256: it.SHA256[:], IssuedAt: it.CRL.ThisUpdate.UTC(), NextUpdate: it.CRL.NextUpdate.UTC()})
	if err := checkCRLFresh(name, it.CRL, at); err != nil {
		c.Fail(check, err.Error())
		return err
	}
	for _, s := range subjects {
		if revoked(it.CRL, s.SerialNumber) {
			err := attest.Errorf(attest.ErrRevoked, name, "certificate %q (serial %s) is revoked", s.Subject.CommonName, s.SerialNumber.Text(16)).
				WithFix("the platform's key is no longer trusted by Intel; do not accept its evidence")
			c.Fail(check, err.Error())
			return err
		}
	}
	c.Pass(check)
	return nil
}
