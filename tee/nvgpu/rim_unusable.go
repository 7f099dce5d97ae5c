package nvgpu

import (
	"fmt"
	"slices"
	"strings"
)

// unusableRIM is a SWID tag among the collateral that failed verification:
// its size, syntax, signature, chain or certificate validity.
type unusableRIM struct {
	source string
	// err is the verification error, as rimError names it.
	err error
	// product and version come from the unsigned content. version is empty
	// when the document does not parse far enough to read it.
	product, version string
}

// describe names the file with the product and version it claims.
func (u *unusableRIM) describe() string {
	switch {
	case u.version == "":
		return "RIM " + u.source + " (version unreadable)"
	case u.product == "":
		return "RIM " + u.source + " (version " + u.version + ")"
	}
	return "RIM " + u.source + " (product " + u.product + ", version " + u.version + ")"
}

// components returns the components of the GPU that the RIM may describe:
// the one its version and product match, or both when its version cannot
// be read.
func (u *unusableRIM) components(id gpuIdentity) []string {
	if u.version == "" {
		return []string{componentDriver, componentVBIOS}
	}
	if c := id.component(u.product, u.version); c != "" {
		return []string{c}
	}
	return nil
}

// settleUnusableRIMs decides for each RIM that failed verification whether
// the rim check can go on without it. Such a RIM never supplies a golden
// value, so it can make the check fail but never pass. Its product and
// version, read from the unsigned content, only select the GPUs it may
// belong to (gpuIdentity.component):
//   - Its version is readable and matches no GPU of the evidence: it is
//     skipped with a warning.
//   - Its version matches the driver or VBIOS of one or more GPUs, and each
//     of them has a usable RIM of that component: it is skipped with a
//     warning, and the usable RIM is compared.
//   - Its version matches the driver or VBIOS of a GPU that has no usable
//     RIM of that component: the check fails with the RIM's error, because
//     the caller supplied that GPU's RIM and it could not be verified.
//   - Its version cannot be read: it may be the RIM of any GPU and
//     component, so it is skipped with a warning when every GPU has a
//     usable driver and VBIOS RIM, and fails the check otherwise.
//
// It returns the warnings and, when a RIM fails the check, the detail for
// the rim check and the error of the first such RIM in collateral order,
// naming the GPU when the evidence has several. Any further RIM that fails
// the check is listed among the warnings.
func settleUnusableRIMs(results []*gpuResult, selected []gpuRIMs, unusable []*unusableRIM) (warnings []string, detail string, err error) {
	n := len(results)
	var failures []string
	for _, u := range unusable {
		// missingGPU and missingComponent are the first GPU and component
		// that u may describe and that have no usable RIM.
		missingGPU, missingComponent := -1, ""
		var usedInstead []string
		for i, r := range results {
			for _, component := range u.components(identityOf(r)) {
				if used := *selected[i].slot(component); used != nil {
					usedInstead = append(usedInstead, used.source)
				} else if missingGPU < 0 {
					missingGPU, missingComponent = i, component
				}
			}
		}

		switch {
		case missingGPU >= 0 && u.version == "":
			failures = append(failures, fmt.Sprintf("%s has no usable %s RIM, and %s may be that RIM but failed verification: %v",
				gpuName(missingGPU, n), missingComponent, u.describe(), u.err))
		case missingGPU >= 0:
			failures = append(failures, fmt.Sprintf("%s describes the %s of %s, but it failed verification and no usable %s RIM of that version remains: %v",
				u.describe(), missingComponent, gpuName(missingGPU, n), missingComponent, u.err))
		case len(usedInstead) == 0:
			warnings = append(warnings, fmt.Sprintf("%s failed verification and was skipped, because it matches no GPU of the evidence (%s): %v",
				u.describe(), gpuVersionList(results), u.err))
		case u.version == "":
			warnings = append(warnings, fmt.Sprintf("%s failed verification and was skipped, because every GPU has a usable driver and VBIOS RIM: %v",
				u.describe(), u.err))
		default:
			warnings = append(warnings, fmt.Sprintf("%s failed verification and was skipped, because the usable RIM %s of that version is compared instead: %v",
				u.describe(), strings.Join(unique(usedInstead), " and "), u.err))
		}
		if missingGPU >= 0 && err == nil {
			err = gpuError(missingGPU, n, u.err)
		}
	}
	if len(failures) == 0 {
		return warnings, "", nil
	}
	return append(warnings, failures[1:]...), failures[0], err
}

// gpuName names GPU i: "the GPU" when the evidence has one, "GPU i"
// otherwise.
func gpuName(i, n int) string {
	if n == 1 {
		return "the GPU"
	}
	return fmt.Sprintf("GPU %d", i)
}

// unique returns names without repeats, in their first order.
func unique(names []string) []string {
	var out []string
	for _, s := range names {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
