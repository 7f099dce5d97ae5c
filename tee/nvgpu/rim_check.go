package nvgpu

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// rimCheck is the name of the check that compares the measurement blocks
// with NVIDIA's RIMs.
const rimCheck = "rim"

// checkRIMs verifies the RIMs among the collateral's XML items and compares
// each GPU's active measurements with the driver and VBIOS RIMs of its
// versions. It records the rim check as
//   - passed when every GPU has a driver and a VBIOS RIM that verified, and
//     all their active measurements match;
//   - failed, returning the error, when a measurement differs, two RIMs
//     that verified describe one version, or a RIM that failed
//     verification may be the only RIM of a GPU's driver or VBIOS;
//   - not checked (not required) when no RIM was supplied, none applies,
//     or a GPU lacks one of its two RIMs.
//
// A RIM that failed verification is skipped with a warning when it belongs
// to no GPU of the evidence, or when the GPUs it may belong to have a RIM
// of its component that verified (settleUnusableRIMs gives the rules). So
// one expired file in a directory of RIMs for many releases does not stop
// every verification, and a failed RIM never supplies a golden value.
//
// It keeps each GPU's RIMs in gpuResult.rims for checkOCSP.
func (v *Verifier) checkRIMs(c *attest.Claims, results []*gpuResult, items []*collateral.Item, roots []*x509.Certificate, at time.Time) error {
	if len(items) == 0 {
		c.Skip(rimCheck, false, "no NVIDIA RIM was supplied for "+gpuVersionList(results)+"; "+rimFix)
		return nil
	}
	rims, unusable, warnings := v.loadRIMs(items, roots, at)
	c.Warnings = append(c.Warnings, warnings...)
	if len(rims) == 0 && len(unusable) == 0 {
		c.Skip(rimCheck, false, "no XML collateral is a SWID tag, so no NVIDIA RIM was supplied for "+gpuVersionList(results)+"; "+rimFix)
		return nil
	}

	used := map[*loadedRIM]bool{}
	selected := make([]gpuRIMs, len(results))
	for i, r := range results {
		sel, err := selectRIMs(r, rims, used)
		if err != nil {
			c.Fail(rimCheck, err.Error())
			return gpuError(i, len(results), err)
		}
		selected[i] = sel
		r.rims = sel
	}
	warnings, detail, err := settleUnusableRIMs(results, selected, unusable)
	c.Warnings = append(c.Warnings, warnings...)
	if err != nil {
		c.Fail(rimCheck, detail)
		return err
	}

	comparisons := make([]rimComparison, len(results))
	for i, r := range results {
		cmp, err := compareRIMs(r.report, selected[i])
		if err != nil {
			c.Fail(rimCheck, err.Error())
			return gpuError(i, len(results), err)
		}
		comparisons[i] = cmp
	}
	if warning := unusedRIMsWarning(rims, used, gpuVersionList(results)); warning != "" {
		c.Warnings = append(c.Warnings, warning)
	}
	recordRIMClaims(c, comparisons)
	markEmulatedRIMs(c, comparisons)
	return recordRIMOutcome(c, comparisons, gpuVersionList(results))
}

// markEmulatedRIMs marks the claims emulated when a development root
// anchors an applied RIM. The emulator stores that root's key, so such a RIM
// vouches for no NVIDIA release, even for a GPU whose device chain ends at a
// vendor root. Claims that are already emulated get no warning, because the
// emulator's own evidence verifies that way.
func markEmulatedRIMs(c *attest.Claims, comparisons []rimComparison) {
	if c.Emulated {
		return
	}
	// GPUs of one release share their RIMs, so each RIM is warned about once.
	warned := make(map[*loadedRIM]bool)
	for _, cmp := range comparisons {
		for _, part := range cmp.rims.parts() {
			if part.rim == nil || warned[part.rim] {
				continue
			}
			warned[part.rim] = true
			root := part.rim.chain[len(part.rim.chain)-1]
			if !attest.IsEmulated(root) {
				continue
			}
			c.Emulated = true
			c.Warnings = append(c.Warnings, fmt.Sprintf("the %s RIM %s is signed under the development root %q, so it vouches for no NVIDIA release and the evidence counts as emulated; supply RIMs signed by NVIDIA, and pass development roots as nvidia-gpu trust anchors only to verify emulated GPUs",
				part.component, part.rim.source, root.Subject.String()))
		}
	}
}

// recordRIMOutcome records the rim check from the comparisons and returns
// the error of the first GPU with a mismatch. versions names the GPUs'
// versions for the detail of a check that did not run.
func recordRIMOutcome(c *attest.Claims, comparisons []rimComparison, versions string) error {
	n := len(comparisons)
	var details []string
	var firstErr error
	for i, cmp := range comparisons {
		for _, m := range cmp.mismatches {
			details = append(details, gpuPrefix(i, n)+m.describe())
		}
		if firstErr == nil && len(cmp.mismatches) > 0 {
			firstErr = gpuError(i, n, mismatchError(cmp.mismatches[0], len(cmp.mismatches)))
		}
	}
	if firstErr != nil {
		c.Fail(rimCheck, strings.Join(details, "; "))
		return firstErr
	}

	var missing, matched []string
	anyRIM := false
	for i, cmp := range comparisons {
		// A RIM without an active measurement vouches for nothing, so it
		// counts as missing.
		for _, part := range cmp.rims.parts() {
			switch {
			case part.rim == nil:
				missing = append(missing, gpuPrefix(i, n)+"no "+part.component+" RIM")
			case cmp.comparedBy[part.component] == 0:
				anyRIM = true
				missing = append(missing, gpuPrefix(i, n)+"no active measurement in the "+part.component+" RIM "+part.rim.Version)
			default:
				anyRIM = true
			}
		}
		if cmp.compared > 0 {
			matched = append(matched, gpuPrefix(i, n)+strconv.Itoa(cmp.compared)+" active measurements match "+cmp.rims.names())
		}
	}
	switch {
	case !anyRIM:
		c.Skip(rimCheck, false, "no supplied RIM has the version of a GPU of the evidence, "+versions+"; "+rimFix)
	case len(missing) > 0:
		detail := "the RIMs are incomplete (" + strings.Join(missing, "; ") + ") for " + versions + "; " + rimFix
		if len(matched) > 0 {
			detail = strings.Join(matched, "; ") + ", but " + detail
		}
		c.Skip(rimCheck, false, detail)
	default:
		c.Checks = append(c.Checks, attest.Check{Name: rimCheck, Result: attest.CheckPassed, Detail: strings.Join(matched, "; ")})
	}
	return nil
}

// names lists the RIMs of a GPU for a check detail.
func (s gpuRIMs) names() string {
	var parts []string
	if s.driver != nil {
		parts = append(parts, "driver RIM "+s.driver.Version)
	}
	if s.vbios != nil {
		parts = append(parts, "VBIOS RIM "+s.vbios.Version)
	}
	return "the " + strings.Join(parts, " and the ")
}

// recordRIMClaims lists each applied RIM in Attributes["rims"] and in the
// claims' collateral.
func recordRIMClaims(c *attest.Claims, comparisons []rimComparison) {
	var listed []map[string]any
	for i, cmp := range comparisons {
		for _, part := range cmp.rims.parts() {
			r := part.rim
			if r == nil {
				continue
			}
			signer := r.chain[0]
			listed = append(listed, map[string]any{
				"gpu": i, "component": part.component, "version": r.Version, "product": r.Product,
				"tag_id": r.TagID, "source": r.source, "sha256": attest.Hex(r.sha256[:]).String(),
				"signer": signer.Subject.String(), "signer_not_after": signer.NotAfter.UTC().Format(time.RFC3339),
			})
			ref := attest.CollateralRef{Kind: "nvidia_rim", Name: r.source, SHA256: r.sha256[:],
				IssuedAt: signer.NotBefore, NextUpdate: signer.NotAfter}
			if !slices.ContainsFunc(c.Collateral, func(o attest.CollateralRef) bool { return bytes.Equal(o.SHA256, ref.SHA256) }) {
				c.Collateral = append(c.Collateral, ref)
			}
		}
	}
	if len(listed) > 0 {
		c.SetAttribute("rims", listed)
	}
}

// gpuVersionList names the chip, driver and VBIOS versions of every GPU,
// so that a user can fetch the matching RIMs.
func gpuVersionList(results []*gpuResult) string {
	var out []string
	for _, r := range results {
		driver, vbios := gpuVersions(r.report)
		driverID, vbiosID := rimServiceIDs(r)
		s := fmt.Sprintf("%s driver %s%s and VBIOS %s%s", product(r.chain), driver, idNote(driverID), vbios, idNote(vbiosID))
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

func idNote(id string) string {
	if id == "" {
		return ""
	}
	return " (RIM ID " + id + ")"
}

// gpuPrefix names GPU i when the evidence has several.
func gpuPrefix(i, n int) string {
	if n == 1 {
		return ""
	}
	return "GPU " + strconv.Itoa(i) + ": "
}

// maxNamedUnusedRIMs bounds how many ignored RIMs unusedRIMsWarning names.
const maxNamedUnusedRIMs = 8

// unusedRIMsWarning returns one warning that names the RIMs no GPU used, or
// "" when every RIM was used. versions lists the GPUs' versions.
//
// A directory with the RIMs of many releases leaves most of them unused
// in every verification. One warning for all of them keeps log lines and
// results short.
func unusedRIMsWarning(rims []*loadedRIM, used map[*loadedRIM]bool, versions string) string {
	var names []string
	unused := 0
	for _, rim := range rims {
		if used[rim] {
			continue
		}
		unused++
		if len(names) < maxNamedUnusedRIMs {
			names = append(names, fmt.Sprintf("%s (product %s, version %s)", rim.source, rim.Product, rim.Version))
		}
	}
	switch {
	case unused == 0:
		return ""
	case unused == 1:
		return fmt.Sprintf("RIM %s matches no GPU of the evidence (%s) and was ignored", names[0], versions)
	}
	list := strings.Join(names, ", ")
	if more := unused - len(names); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return fmt.Sprintf("%d RIMs match no GPU of the evidence (%s) and were ignored: %s", unused, versions, list)
}
