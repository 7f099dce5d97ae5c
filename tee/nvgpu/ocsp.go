package nvgpu

import (
	"bytes"
	"context"
	"crypto/x509"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// ocspCheck is the name of the check that no certificate of the device and
// RIM signing chains is revoked.
const ocspCheck = "ocsp"

// ocspFix names how to supply OCSP responses.
const ocspFix = "pass the responses of NVIDIA's OCSP service (DER, as the responder returns them) with --collateral nvidia-gpu=FILE, or verify with --online"

// ocspFetchFix names how to supply OCSP responses after fetching them
// failed.
const ocspFetchFix = "check that the responder, or the one that --ocsp-url names, is reachable and responds to OCSP requests, or pass its responses with --collateral nvidia-gpu=FILE"

// ocspTarget is one certificate whose revocation status the ocsp check
// reads.
type ocspTarget struct {
	cert, issuer *x509.Certificate
	// role names the chain and the certificate's place in it, such as
	// "GPU intermediate CA" or "driver RIM signer".
	role string
	// required is false for the device leaf certificate (see ocspTargets).
	required bool
	// responder is the nearest OCSP responder URL that a certificate above
	// cert in its chain names, for a certificate that names none.
	responder string
}

// describe names the target's certificate for messages.
func (t ocspTarget) describe() string {
	return t.role + " " + strconv.Quote(t.cert.Subject.String()) + " (serial " + serialHex(t.cert) + ")"
}

// serialHex returns the serial number in lowercase hexadecimal, as big.Int.Text
// writes it.
func serialHex(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// ocspTargets lists every certificate below the root of each GPU's device
// chain and of each applied RIM's signing chain, once each.
//
// The device leaf certificate is not required. The GPU's firmware issues it
// at boot under the per-device BROM certificate, so NVIDIA's OCSP responder
// has no record of it. NVIDIA's verifier skips it too: it starts at index 1
// of the GPU chain (ocsp_certificate_chain_validation in
// guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/cc_admin_utils.py,
// github.com/NVIDIA/nvtrust commit 028173093d43). A response supplied for
// the leaf is still checked.
func ocspTargets(results []*gpuResult) []ocspTarget {
	var out []ocspTarget
	seen := map[string]bool{}
	add := func(chain []*x509.Certificate, role func(i int) string, leafRequired bool) {
		for i := 0; i+1 < len(chain); i++ {
			key := string(chain[i].Raw) + string(chain[i+1].Raw)
			if seen[key] {
				continue
			}
			seen[key] = true
			t := ocspTarget{cert: chain[i], issuer: chain[i+1], role: role(i), required: i > 0 || leafRequired}
			for _, above := range chain[i+1:] {
				if len(above.OCSPServer) > 0 {
					t.responder = above.OCSPServer[0]
					break
				}
			}
			out = append(out, t)
		}
	}
	for _, r := range results {
		add(r.chain, func(i int) string { return "GPU " + chainRole(i, len(r.chain)) }, false)
		for _, part := range r.rims.parts() {
			if part.rim == nil {
				continue
			}
			add(part.rim.chain, func(i int) string {
				if i == 0 {
					return part.component + " RIM signer"
				}
				return part.component + " RIM intermediate CA"
			}, true)
		}
	}
	return out
}

// checkOCSP reads the revocation status of every certificate that
// ocspTargets lists from the OCSP responses of the collateral. It requests
// them from the collateral source first, so that an online source fetches
// them.
// offline is the collateral of the first query, used when that request
// fails. It records the ocsp check as
//   - passed when every required certificate has a current good response
//     that verifies;
//   - failed, returning the error, when a response does not verify, is
//     ambiguous, revokes the certificate at the verification time, or has
//     the status revoked or unknown while current. It also fails when a
//     certificate has expired responses and none current (see
//     ocspTarget.status);
//   - not checked (not required) when a required certificate has no
//     response, or only responses produced after the verification time.
func checkOCSP(ctx context.Context, c *attest.Claims, results []*gpuResult, opts attest.Options, offline *collateral.Set, at time.Time) error {
	targets := ocspTargets(results)
	set, fetchErr := ocspCollateral(ctx, opts, targets, at)
	if fetchErr != nil {
		set = offline
	}
	responses, err := parseOCSPItems(set.OfKind(collateral.KindOCSP))
	if err != nil {
		c.Fail(ocspCheck, err.Error())
		return err
	}

	pool := set.Certificates()
	now := time.Now()
	used := map[*ocspResponse]bool{}
	var out ocspOutcome
	var statuses []map[string]any
	for _, t := range targets {
		st, err := t.status(responses, pool, at, now)
		if err != nil {
			c.Fail(ocspCheck, err.Error())
			return err
		}
		switch {
		case st == nil && t.required:
			out.missing = append(out.missing, t.describe())
		case st == nil || !t.required && st.timing == ocspNewer:
			out.leafUnchecked = true
		case st.timing == ocspNewer:
			out.newer = append(out.newer, t.newerNote(st, at))
		default:
			out.checked = append(out.checked, t.role+" "+strconv.Quote(t.cert.Subject.CommonName))
			statuses = append(statuses, st.attributes(t))
			recordOCSPCollateral(c, t, st)
		}
		if st != nil {
			used[st.from] = true
		}
	}
	for _, r := range responses {
		if !used[r] {
			c.Warnings = append(c.Warnings, "OCSP response "+itemName(r.item)+
				" is about no certificate of the GPU device chains or the applied RIMs' signing chains and was ignored")
		}
	}
	if len(statuses) > 0 {
		c.SetAttribute("ocsp", statuses)
	}
	if len(out.missing) > 0 || len(out.newer) > 0 {
		c.Skip(ocspCheck, false, out.skipDetail(ocspFetchNotes(set, fetchErr), at))
		return nil
	}
	c.Checks = append(c.Checks, attest.Check{Name: ocspCheck, Result: attest.CheckPassed, Detail: out.passDetail()})
	return nil
}

// ocspOutcome collects the certificates of the ocsp check by outcome, as
// descriptions for its detail.
type ocspOutcome struct {
	// checked lists the certificates with a current good response.
	checked []string
	// missing lists the required certificates without a response.
	missing []string
	// newer explains, for each required certificate whose responses were
	// all produced after the verification time, why none shows its
	// status.
	newer []string
	// leafUnchecked is set when a GPU device leaf certificate has no
	// current response, which it does not need.
	leafUnchecked bool
}

func (o ocspOutcome) passDetail() string {
	detail := "good OCSP responses for the " + strings.Join(o.checked, ", the ")
	if o.leafUnchecked {
		detail += "; the GPU device leaf certificate needs none, because the GPU issues it itself"
	}
	return detail
}

// skipDetail explains why the check could not run for every certificate,
// with fetchNotes, the errors of an online fetch, and the verification
// time at.
func (o ocspOutcome) skipDetail(fetchNotes string, at time.Time) string {
	var parts []string
	if len(o.missing) > 0 {
		part := "no OCSP response for the " + strings.Join(o.missing, ", the ") + "; "
		if fetchNotes != "" {
			part += "fetching them failed: " + fetchNotes + "; " + ocspFetchFix
		} else {
			part += ocspFix
		}
		parts = append(parts, part)
	}
	if len(o.newer) > 0 {
		parts = append(parts, strings.Join(o.newer, "; ")+"; "+ocspNewerFix(at))
	}
	detail := strings.Join(parts, "; ")
	if len(o.checked) > 0 {
		detail = "good OCSP responses for the " + strings.Join(o.checked, ", the ") + ", but " + detail
	}
	return detail
}

// ocspNewerFix names how to check revocation at a past verification time
// at, for which only newer responses were supplied or fetched.
func ocspNewerFix(at time.Time) string {
	return "to check revocation at " + rfc3339(at) + ", pass the OCSP responses that were current at that time (DER, as NVIDIA's OCSP service returned them) with --collateral nvidia-gpu=FILE"
}

// ocspCollateral queries the collateral source for the OCSP responses of
// the required targets. An offline set returns all it contains, and an
// online source fetches a response for each.
func ocspCollateral(ctx context.Context, opts attest.Options, targets []ocspTarget, at time.Time) (*collateral.Set, error) {
	q := collateral.Query{TEE: string(attest.TEENVGPU), At: at}
	for _, t := range targets {
		if t.required {
			q.OCSP = append(q.OCSP, collateral.OCSPRequest{Certificate: t.cert, Issuer: t.issuer, Responder: t.responder})
		}
	}
	return opts.CollateralFor(ctx, q)
}

// ocspFetchNotes lists why an online source fetched no OCSP response, from
// the failed query or the items it did not serve, each distinct error once
// and on one line, because every certificate of a chain usually fails the
// same way.
func ocspFetchNotes(set *collateral.Set, fetchErr error) string {
	var notes []string
	add := func(msg string) {
		msg = strings.TrimSpace(strings.TrimPrefix(msg, "collateral: "))
		if msg != "" && !slices.Contains(notes, msg) {
			notes = append(notes, msg)
		}
	}
	if fetchErr != nil {
		// The query joins the error of each item with newlines.
		for line := range strings.SplitSeq(fetchErr.Error(), "\n") {
			add(line)
		}
	}
	for _, u := range set.Unserved {
		if key, msg, ok := strings.Cut(u, ": "); ok && strings.HasPrefix(key, "ocsp/") {
			add(msg)
		}
	}
	return strings.Join(notes, "; ")
}

// recordOCSPCollateral lists the response in the claims' collateral once.
func recordOCSPCollateral(c *attest.Claims, t ocspTarget, st *ocspStatus) {
	ref := attest.CollateralRef{Kind: string(collateral.KindOCSP), Name: t.cert.Subject.CommonName + " serial " + serialHex(t.cert),
		SHA256: st.from.item.SHA256[:], IssuedAt: st.single.ThisUpdate.UTC(), NextUpdate: st.single.ValidUntil().UTC()}
	same := func(o attest.CollateralRef) bool {
		return o.Name == ref.Name && bytes.Equal(o.SHA256, ref.SHA256)
	}
	if !slices.ContainsFunc(c.Collateral, same) {
		c.Collateral = append(c.Collateral, ref)
	}
}
