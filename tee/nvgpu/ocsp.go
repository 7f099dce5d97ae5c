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
//   - failed, returning the error, when a response has the status
//     revoked or unknown, does not verify, or is not current at the
//     verification time while no other response of that certificate is;
//   - not checked (not required) when a required certificate has no
//     response.
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
	used := map[*ocspResponse]bool{}
	var checked, missing []string
	var statuses []map[string]any
	leafUnchecked := false
	for _, t := range targets {
		st, err := t.status(responses, pool, at)
		if err != nil {
			c.Fail(ocspCheck, err.Error())
			return err
		}
		if st == nil {
			if t.required {
				missing = append(missing, t.describe())
			} else {
				leafUnchecked = true
			}
			continue
		}
		used[st.from] = true
		checked = append(checked, t.role+" "+strconv.Quote(t.cert.Subject.CommonName))
		statuses = append(statuses, st.attributes(t))
		recordOCSPCollateral(c, t, st)
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

	if len(missing) > 0 {
		detail := "no OCSP response for the " + strings.Join(missing, ", the ") + "; "
		if notes := ocspFetchNotes(set, fetchErr); notes != "" {
			detail += "fetching them failed: " + notes + "; " + ocspFetchFix
		} else {
			detail += ocspFix
		}
		if len(checked) > 0 {
			detail = "good OCSP responses for the " + strings.Join(checked, ", the ") + ", but " + detail
		}
		c.Skip(ocspCheck, false, detail)
		return nil
	}
	detail := "good OCSP responses for the " + strings.Join(checked, ", the ")
	if leafUnchecked {
		detail += "; the GPU device leaf certificate needs none, because the GPU issues it itself"
	}
	c.Checks = append(c.Checks, attest.Check{Name: ocspCheck, Result: attest.CheckPassed, Detail: detail})
	return nil
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
		SHA256: st.from.item.SHA256[:], IssuedAt: st.thisUpdate.UTC(), NextUpdate: st.validUntil.UTC()}
	same := func(o attest.CollateralRef) bool {
		return o.Name == ref.Name && bytes.Equal(o.SHA256, ref.SHA256)
	}
	if !slices.ContainsFunc(c.Collateral, same) {
		c.Collateral = append(c.Collateral, ref)
	}
}
