package nvgpu

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

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

// ocspStatus is the status that one verified response gives a
// certificate.
type ocspStatus struct {
	from *ocspResponse
	// single is the SingleResponse about the certificate, whose CertID
	// was matched, and the only source of the status and period.
	single collateral.OCSPSingleResponse
	timing ocspTiming
}

// attributes describes the status for Attributes["ocsp"].
func (st *ocspStatus) attributes(t ocspTarget) map[string]any {
	return map[string]any{
		"certificate": t.cert.Subject.String(), "serial": serialHex(t.cert), "role": t.role, "status": "good",
		"this_update": rfc3339(st.single.ThisUpdate), "valid_until": rfc3339(st.single.ValidUntil()),
		"source": itemName(st.from.item), "sha256": attest.Hex(st.from.item.SHA256[:]).String(),
	}
}

// revokes reports whether st shows the certificate revoked at at, whatever
// the other responses state. That is so when it is revoked at or before at
// for any reason but certificateHold, because only a hold can be lifted
// (RFC 5280 section 5.3.1). It is also so when a response produced after
// at puts it on hold since at or before at, because the hold then lasted
// past at.
func (st *ocspStatus) revokes(at time.Time) bool {
	s := st.single
	if s.Status != ocsp.Revoked || s.RevokedAt.After(at) {
		return false
	}
	return s.RevocationReason != ocsp.CertificateHold || st.timing == ocspNewer
}

// status returns the status of t from the responses, nil when no response
// is about t's certificate, or the error that fails the check. Every
// response about the certificate must parse and verify. The first
// response that revokes the certificate (see ocspStatus.revokes) decides.
// Otherwise a response from the future of the current time now fails the
// check, and of the responses current at at the one with the latest
// thisUpdate decides, so that a newer response can lift a hold. When none
// is current, an expired response fails the check, naming the period of
// the freshest one. When every response was produced after at, status
// returns the earliest, with timing ocspNewer: it does not show the status
// at at, so the caller reports the certificate as not checked.
func (t ocspTarget) status(responses []*ocspResponse, pool []*x509.Certificate, at, now time.Time) (*ocspStatus, error) {
	var current, expired, newer, future, revoked *ocspStatus
	for _, r := range responses {
		st, err := t.statusFrom(r, pool, at, now)
		if err != nil {
			return nil, err
		}
		if st == nil {
			continue
		}
		if revoked == nil && st.revokes(at) {
			revoked = st
		}
		switch st.timing {
		case ocspCurrent:
			current = latest(current, st)
		case ocspExpired:
			expired = latest(expired, st)
		case ocspNewer:
			if newer == nil || st.single.ThisUpdate.Before(newer.single.ThisUpdate) {
				newer = st
			}
		case ocspFuture:
			future = latest(future, st)
		}
	}
	switch {
	case revoked != nil:
		return nil, t.revokedError(revoked)
	case future != nil:
		return nil, t.clockError(future, now)
	case current != nil:
		return t.currentStatus(current)
	case expired != nil:
		return nil, t.staleError(expired, at)
	}
	return newer, nil
}

// latest returns whichever of a and b has the later thisUpdate, and a when
// both are equal. a may be nil.
func latest(a, b *ocspStatus) *ocspStatus {
	if a == nil || b.single.ThisUpdate.After(a.single.ThisUpdate) {
		return b
	}
	return a
}

// statusFrom returns the status that r gives t's certificate, or nil when r
// is about no certificate of that issuer and serial number. It returns the
// error that fails the check when collateral.FindOCSPSingleResponse
// rejects r, as ambiguous about the certificate for one, or when neither
// t's issuer nor a responder that it delegated signed r.
func (t ocspTarget) statusFrom(r *ocspResponse, pool []*x509.Certificate, at, now time.Time) (*ocspStatus, error) {
	single, err := collateral.FindOCSPSingleResponse(r.singles, t.cert, t.issuer)
	if errors.Is(err, collateral.ErrNoOCSPSingleResponse) {
		return nil, nil
	}
	if err != nil {
		return nil, attest.Malformed("OCSP response "+itemName(r.item), "the response about the "+t.describe()+" cannot be used", err)
	}
	// golang.org/x/crypto/ocsp checks the signature, which covers every
	// SingleResponse. Its status fields come from the first SingleResponse
	// with the serial number, which may name another issuer, so they are
	// not read.
	// NOTE: it also rejects a response whose first SingleResponse with the
	// serial number has a critical extension or a CertID hash that it does
	// not support, even when that entry is about another issuer's
	// certificate.
	resp, err := ocsp.ParseResponseForCert(r.item.Raw, t.cert, nil)
	if err != nil {
		return nil, t.responseError(r, err)
	}
	st := &ocspStatus{from: r, single: single, timing: ocspTimingOf(single, at, now)}
	// A delegated responder must be valid when it signed. For a response
	// produced before at, that is so when it is valid at at, the rule of
	// every other certificate of the verification. A response produced
	// after at is signed after at too, so its responder is checked at its
	// producedAt. Such a response can only fail the check or leave it not
	// checked, never pass it.
	signedAt, when := at, "the verification time "+rfc3339(at)
	if st.timing == ocspNewer || st.timing == ocspFuture {
		signedAt, when = resp.ProducedAt, "its producedAt "+rfc3339(resp.ProducedAt)+", because it was produced after the verification time"
	}
	if err := checkResponder(resp, t.issuer, pool, signedAt); err != nil {
		return nil, t.signatureError(r, err, when)
	}
	return st, nil
}

// currentStatus returns the status of a response current at the
// verification time, or the error of a revoked or unknown status.
func (t ocspTarget) currentStatus(st *ocspStatus) (*ocspStatus, error) {
	switch st.single.Status {
	case ocsp.Good:
		return st, nil
	case ocsp.Revoked:
		return nil, t.revokedError(st)
	}
	return nil, attest.Errorf(attest.ErrChain, "OCSP certStatus",
		"the OCSP response %s gives the status unknown for the %s: the responder has no record of the certificate", itemName(st.from.item), t.describe()).
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

// signatureError reports a response that neither t's issuer nor a
// responder that it delegated signed. when names the time at which a
// delegated responder must be valid.
func (t ocspTarget) signatureError(r *ocspResponse, err error, when string) error {
	return &attest.Error{Kind: attest.ErrSignature, Field: "OCSP response " + itemName(r.item) + " signature",
		Reason: "the response about the " + t.describe() + " is not signed by its issuer or by a responder that the issuer delegated and that is valid at " + when, Err: err,
		Fix: "pass the response exactly as the certificate's OCSP responder returned it; a response signed by anyone else proves nothing"}
}

func (t ocspTarget) staleError(st *ocspStatus, at time.Time) error {
	name, s := itemName(st.from.item), st.single
	reason := fmt.Sprintf("the response about the %s expired: nextUpdate %s is before the verification time %s",
		t.describe(), rfc3339(s.ValidUntil()), rfc3339(at))
	if s.NextUpdate.IsZero() {
		reason = fmt.Sprintf("the response about the %s has no nextUpdate, so it was current only until %s, %s after its thisUpdate, which is before the verification time %s",
			t.describe(), rfc3339(s.ValidUntil()), collateral.OCSPValidityWithoutNextUpdate, rfc3339(at))
	}
	return attest.Errorf(attest.ErrCollateralExpired, "OCSP response "+name+" nextUpdate", "%s", reason).
		WithFix("pass a current response from the certificate's OCSP responder, or verify with --online, or pass the time the evidence was produced with --at")
}

// clockError reports a response whose thisUpdate lies after the current
// time now by more than ocspClockSkew.
func (t ocspTarget) clockError(st *ocspStatus, now time.Time) error {
	return attest.Errorf(attest.ErrCollateralExpired, "OCSP response "+itemName(st.from.item)+" thisUpdate",
		"the response about the %s is not yet valid: thisUpdate %s is more than %s after the current time %s, so the clock of this machine or of the OCSP responder is wrong",
		t.describe(), rfc3339(st.single.ThisUpdate), ocspClockSkew, rfc3339(now)).
		WithFix("check the system clock, then fetch the response again or pass one whose thisUpdate is not in the future")
}

// newerNote explains why a response produced after the verification time
// at leaves t's certificate not checked.
func (t ocspTarget) newerNote(st *ocspStatus, at time.Time) string {
	kind := "OCSP response"
	if st.from.item.Fetched {
		kind = "fetched OCSP response"
	}
	status := "good"
	switch st.single.Status {
	case ocsp.Revoked:
		status = "revoked since " + rfc3339(st.single.RevokedAt) + ", after the verification time"
	case ocsp.Unknown:
		status = "unknown"
	}
	return fmt.Sprintf("the %s %s about the %s is newer than the verification time %s: its thisUpdate %s is more than %s later, so it gives the status at that later time (%s), not at %s",
		kind, itemName(st.from.item), t.describe(), rfc3339(at), rfc3339(st.single.ThisUpdate), ocspClockSkew, status, rfc3339(at))
}

func (t ocspTarget) revokedError(st *ocspStatus) error {
	s := st.single
	reason := revocationReason(s.RevocationReason)
	fix := "NVIDIA no longer vouches for this certificate: do not accept evidence or RIMs that depend on it"
	if s.RevocationReason == ocsp.CertificateHold {
		// NVIDIA's verifier continues after certificateHold only when its
		// user passes --allow_hold_cert, and without it fails as for any
		// other reason (cc_admin_utils.py at nvtrust commit 028173093d43).
		// Cloister has no such waiver, because the certificate is
		// suspended at the time of the response.
		fix = "NVIDIA has suspended this certificate: do not accept evidence or RIMs that depend on it until a newer response from NVIDIA's OCSP service says good"
	}
	return attest.Errorf(attest.ErrRevoked, "OCSP certStatus",
		"the %s is revoked since %s, reason %s, according to the OCSP response %s (thisUpdate %s)",
		t.describe(), rfc3339(s.RevokedAt), reason, itemName(st.from.item), rfc3339(s.ThisUpdate)).
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
