package nvgpu

import (
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// ocspClockSkew is how far after the verification time an OCSP response's
// thisUpdate may lie. A responder that signs on request stamps thisUpdate
// with its own clock, which may run a little ahead of the verifier's.
const ocspClockSkew = 5 * time.Minute

// ocspResponse is one OCSP collateral item with its decoded
// SingleResponses.
type ocspResponse struct {
	item    *collateral.Item
	singles []collateral.OCSPSingleResponse
}

// parseOCSPItems decodes the OCSP items, each digest once.
func parseOCSPItems(items []*collateral.Item) ([]*ocspResponse, error) {
	var out []*ocspResponse
	seen := map[[32]byte]bool{}
	for _, it := range items {
		if seen[it.SHA256] {
			continue
		}
		seen[it.SHA256] = true
		singles, err := collateral.ParseOCSPResponse(it.Raw)
		if err != nil {
			return nil, attest.Malformed("OCSP response "+itemName(it), "not a successful basic OCSP response", err).
				WithFix("pass the OCSP response exactly as the responder returned it (DER), or remove it from the collateral")
		}
		out = append(out, &ocspResponse{item: it, singles: singles})
	}
	return out, nil
}

// covers reports whether the response is about cert, issued by issuer. It
// looks only at the first SingleResponse with cert's serial number, because
// that is the one golang.org/x/crypto/ocsp reads the status from.
// NOTE: a response that lists the serial for another issuer first is
// treated as not covering cert, even when a later entry does.
func (r *ocspResponse) covers(cert, issuer *x509.Certificate) bool {
	for _, s := range r.singles {
		if s.CertID.SerialNumber != nil && s.CertID.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return s.CertID.Matches(cert, issuer)
		}
	}
	return false
}

// ocspStatus is the verified status of one certificate.
type ocspStatus struct {
	from       *ocspResponse
	resp       *ocsp.Response
	thisUpdate time.Time
	validUntil time.Time
}

// attributes describes the status for Attributes["ocsp"].
func (st *ocspStatus) attributes(t ocspTarget) map[string]any {
	return map[string]any{
		"certificate": t.cert.Subject.String(), "serial": serialHex(t.cert), "role": t.role, "status": "good",
		"this_update": st.thisUpdate.UTC().Format(time.RFC3339), "valid_until": st.validUntil.UTC().Format(time.RFC3339),
		"source": itemName(st.from.item), "sha256": attest.Hex(st.from.item.SHA256[:]).String(),
	}
}

// status returns the good status of t from the responses, nil when no
// response is about t's certificate, or the error that fails the check.
// Every response about the certificate must parse and verify. A response
// that revokes the certificate before at for any reason but certificateHold
// decides, current or not, because only a hold can be lifted (RFC 5280
// section 5.3.1). Otherwise, of the responses current at at, the one with
// the latest thisUpdate decides, so that a newer response can lift a hold.
// When none is current, the error names the period of the freshest one.
func (t ocspTarget) status(responses []*ocspResponse, pool []*x509.Certificate, at time.Time) (*ocspStatus, error) {
	var current, freshest, permanent *ocspStatus
	for _, r := range responses {
		if !r.covers(t.cert, t.issuer) {
			continue
		}
		resp, err := ocsp.ParseResponseForCert(r.item.Raw, t.cert, nil)
		if err != nil {
			return nil, t.responseError(r, err)
		}
		if err := checkResponder(resp, t.issuer, pool, at); err != nil {
			return nil, t.signatureError(r, err)
		}
		single := collateral.OCSPSingleResponse{ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate}
		st := &ocspStatus{from: r, resp: resp, thisUpdate: resp.ThisUpdate, validUntil: single.ValidUntil()}
		if resp.Status == ocsp.Revoked && resp.RevocationReason != ocsp.CertificateHold && !resp.RevokedAt.After(at) && permanent == nil {
			permanent = st
		}
		if freshest == nil || st.thisUpdate.After(freshest.thisUpdate) {
			freshest = st
		}
		if !at.Before(st.thisUpdate.Add(-ocspClockSkew)) && !at.After(st.validUntil) &&
			(current == nil || st.thisUpdate.After(current.thisUpdate)) {
			current = st
		}
	}
	switch {
	case permanent != nil:
		return nil, t.revokedError(permanent)
	case freshest == nil:
		return nil, nil
	case current == nil:
		return nil, t.staleError(freshest, at)
	}
	switch current.resp.Status {
	case ocsp.Good:
		return current, nil
	case ocsp.Revoked:
		return nil, t.revokedError(current)
	}
	return nil, attest.Errorf(attest.ErrChain, "OCSP certStatus",
		"the OCSP response %s gives the status unknown for the %s: the responder has no record of the certificate", itemName(current.from.item), t.describe()).
		WithValues("unknown", "good").
		WithFix("do not accept evidence that depends on this certificate; if the response came from another responder, fetch one from the certificate's own OCSP responder")
}

// checkResponder checks that issuer, or a responder that issuer delegated,
// signed the response (RFC 6960 section 4.2.2.2). A delegated responder's
// certificate was signed by issuer, has the id-kp-OCSPSigning extended key
// usage and is valid at at. It may come inside the response or among the
// collateral certificates in pool. Its own revocation status is not
// checked, as RFC 6960 section 4.2.2.2.1 leaves that to the CA's policy.
func checkResponder(resp *ocsp.Response, issuer *x509.Certificate, pool []*x509.Certificate, at time.Time) error {
	if signer := resp.Certificate; signer != nil {
		// golang.org/x/crypto/ocsp verified the response's signature
		// under the certificate it carries.
		return collateral.CheckOCSPResponder(signer, issuer, at)
	}
	if resp.CheckSignatureFrom(issuer) == nil {
		return nil
	}
	for _, c := range pool {
		if collateral.CheckOCSPResponder(c, issuer, at) == nil && resp.CheckSignatureFrom(c) == nil {
			return nil
		}
	}
	return fmt.Errorf("the signature verifies neither under the issuer %q nor under a delegated responder certificate among the collateral", issuer.Subject.String())
}

// responseError reports a response that golang.org/x/crypto/ocsp rejects.
// It checks the signature under a certificate the response carries, so a
// signature failure is reported as one.
func (t ocspTarget) responseError(r *ocspResponse, err error) error {
	kind := attest.ErrMalformed
	if strings.Contains(err.Error(), "signature") {
		kind = attest.ErrSignature
	}
	return &attest.Error{Kind: kind, Field: "OCSP response " + itemName(r.item),
		Reason: "the response about the " + t.describe() + " is invalid", Err: err,
		Fix: "pass the OCSP response exactly as the responder returned it (DER), or remove it from the collateral"}
}

func (t ocspTarget) signatureError(r *ocspResponse, err error) error {
	return &attest.Error{Kind: attest.ErrSignature, Field: "OCSP response " + itemName(r.item) + " signature",
		Reason: "the response about the " + t.describe() + " is not signed by its issuer or by a responder the issuer delegated", Err: err,
		Fix: "pass the response exactly as the certificate's OCSP responder returned it; a response signed by anyone else proves nothing"}
}

func (t ocspTarget) staleError(st *ocspStatus, at time.Time) error {
	name := itemName(st.from.item)
	if at.Before(st.thisUpdate.Add(-ocspClockSkew)) {
		return attest.Errorf(attest.ErrCollateralExpired, "OCSP response "+name+" thisUpdate",
			"the response about the %s is not yet valid: thisUpdate %s is after the verification time %s", t.describe(), rfc3339(st.thisUpdate), rfc3339(at)).
			WithFix("pass a response that was current at the verification time, or check the time given with --at and the system clock")
	}
	reason := fmt.Sprintf("the response about the %s expired: nextUpdate %s is before the verification time %s",
		t.describe(), rfc3339(st.validUntil), rfc3339(at))
	if st.resp.NextUpdate.IsZero() {
		reason = fmt.Sprintf("the response about the %s has no nextUpdate, so it was current only until %s, %s after its thisUpdate, which is before the verification time %s",
			t.describe(), rfc3339(st.validUntil), collateral.OCSPValidityWithoutNextUpdate, rfc3339(at))
	}
	return attest.Errorf(attest.ErrCollateralExpired, "OCSP response "+name+" nextUpdate", "%s", reason).
		WithFix("pass a current response from the certificate's OCSP responder, or verify with --online, or pass the time the evidence was produced with --at")
}

func (t ocspTarget) revokedError(st *ocspStatus) error {
	reason := revocationReason(st.resp.RevocationReason)
	fix := "NVIDIA no longer vouches for this certificate: do not accept evidence or RIMs that depend on it"
	if st.resp.RevocationReason == ocsp.CertificateHold {
		// NVIDIA's verifier continues after certificateHold only when its
		// user passes --allow_hold_cert, and without it fails as for any
		// other reason (cc_admin_utils.py at nvtrust commit 028173093d43).
		// Cloister has no such waiver, because the certificate is
		// suspended at the time of the response.
		fix = "NVIDIA has suspended this certificate: do not accept evidence or RIMs that depend on it until a newer response from NVIDIA's OCSP service says good"
	}
	return attest.Errorf(attest.ErrRevoked, "OCSP certStatus",
		"the %s is revoked since %s, reason %s, according to the OCSP response %s (thisUpdate %s)",
		t.describe(), rfc3339(st.resp.RevokedAt), reason, itemName(st.from.item), rfc3339(st.thisUpdate)).
		WithValues("revoked", "good").WithFix(fix)
}

// revocationReason names a CRLReason code (RFC 5280 section 5.3.1).
func revocationReason(code int) string {
	names := map[int]string{
		ocsp.Unspecified: "unspecified", ocsp.KeyCompromise: "keyCompromise", ocsp.CACompromise: "cACompromise",
		ocsp.AffiliationChanged: "affiliationChanged", ocsp.Superseded: "superseded",
		ocsp.CessationOfOperation: "cessationOfOperation", ocsp.CertificateHold: "certificateHold",
		ocsp.RemoveFromCRL: "removeFromCRL", ocsp.PrivilegeWithdrawn: "privilegeWithdrawn", ocsp.AACompromise: "aACompromise",
	}
	if name, ok := names[code]; ok {
		return name
	}
	return "code " + strconv.Itoa(code)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
