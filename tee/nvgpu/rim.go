package nvgpu

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// Components that a RIM describes.
const (
	componentDriver = "driver"
	componentVBIOS  = "VBIOS"
)

// rimFix is the fix that names how to supply RIMs.
const rimFix = "pass NVIDIA's signed driver and VBIOS RIMs (SWID tag XML files from NVIDIA's RIM service, https://rim.attestation.nvidia.com/v1/rim/ID) with --collateral nvidia-gpu=FILE"

// loadedRIM is a verified RIM with the collateral item it came from.
type loadedRIM struct {
	*signedRIM
	source string
	sha256 [32]byte
}

// rimRoots returns the roots that a RIM signing chain may end at: the
// caller's roots for nvidia-gpu when there are any, as attest.Roots picks
// them, or else the embedded NVIDIA CoRIM signing Root CA. The pinned
// NVIDIA Device Identity CA never anchors a RIM, even when the caller
// passes it, because it certifies GPU attestation keys, which must not
// sign reference values. Passing only that root therefore keeps the
// embedded RIM root.
func rimRoots(ctx context.Context, opts attest.Options, q collateral.Query, deviceRoots []*x509.Certificate) ([]*x509.Certificate, error) {
	embedded, err := embeddedRIMRoots()
	if err != nil {
		return nil, attest.Errorf(attest.ErrChain, "RIM root", "%v", err).WithFix("rebuild Cloister from an unmodified source tree")
	}
	roots, err := attest.Roots(ctx, opts, q, embedded)
	if err != nil {
		return nil, err
	}
	return rootsExcept(roots, deviceRoots, embedded), nil
}

// withoutRIMRoot returns the device chain roots without the embedded
// NVIDIA CoRIM signing Root CA, which signs reference values and must not
// anchor GPU attestation keys, just as rimRoots keeps the device root from
// anchoring RIMs. When the RIM root was the only root, the embedded device
// roots apply, so that passing the RIM root for RIMs does not break the
// device chain.
func withoutRIMRoot(roots, embedded []*x509.Certificate) ([]*x509.Certificate, error) {
	rim, err := embeddedRIMRoots()
	if err != nil {
		return nil, attest.Errorf(attest.ErrChain, "RIM root", "%v", err).WithFix("rebuild Cloister from an unmodified source tree")
	}
	return rootsExcept(roots, rim, embedded), nil
}

// rootsExcept returns roots without the certificates in excluded, or
// fallback when none remains.
func rootsExcept(roots, excluded, fallback []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, r := range roots {
		if !containsCert(excluded, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return fallback
	}
	return out
}

func containsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	return slices.ContainsFunc(certs, c.Equal)
}

// loadRIMs verifies every XML item of the collateral that is a SWID tag,
// through the Verifier's RIM cache. It returns the RIMs that verified and
// those that did not, which settleUnusableRIMs judges by the GPUs they may
// belong to. An XML document of another kind is not a RIM and only warned
// about.
func (v *Verifier) loadRIMs(items []*collateral.Item, roots []*x509.Certificate, at time.Time) ([]*loadedRIM, []*unusableRIM, []string) {
	var rims []*loadedRIM
	var unusable []*unusableRIM
	var warnings []string
	rootsKey := rootsFingerprint(roots)
	seen := map[[32]byte]bool{}
	for _, it := range items {
		sum := it.SHA256
		if seen[sum] {
			continue
		}
		seen[sum] = true
		source := itemName(it)
		out := v.rims.verify(it.Raw, sum, roots, rootsKey, at)
		switch {
		case errors.Is(out.err, errNotSWID):
			warnings = append(warnings, fmt.Sprintf("XML collateral %s is not a SWID tag, so it is not an NVIDIA RIM and was ignored", source))
			continue
		case out.err != nil:
			unusable = append(unusable, &unusableRIM{source: source, err: rimError(source, out.err), product: out.product, version: out.version})
			continue
		}
		rims = append(rims, &loadedRIM{signedRIM: out.rim, source: source, sha256: sum})
	}
	return rims, unusable, warnings
}

// itemName names a collateral item by its file name, a fetched item by its
// URL, and an item without a source by its digest.
func itemName(it *collateral.Item) string {
	if it.Fetched {
		return it.Source
	}
	if it.Source != "" {
		return filepath.Base(it.Source)
	}
	sum := it.SHA256
	return "sha256:" + attest.Hex(sum[:8]).String()
}

// rimError names the RIM file in err and gives the fix for its kind. An
// attest.ErrCollateralExpired error keeps the fix that
// checkCertificateValidity gave it, which differs for an expired certificate
// and one not yet valid.
func rimError(source string, err error) error {
	var e *attest.Error
	if !errors.As(err, &e) {
		return rimMalformed(source, err)
	}
	c := *e
	c.Field = "RIM " + source + ": " + e.Field
	switch {
	case errors.Is(err, attest.ErrCollateralExpired):
	case errors.Is(err, attest.ErrChain):
		c.Fix = "pass the RIM exactly as NVIDIA's RIM service returns it; a RIM signed under another root needs that root with --trust-anchor nvidia-gpu=FILE"
	case errors.Is(err, attest.ErrSignature):
		c.Fix = "the RIM was altered after NVIDIA signed it: fetch it again from NVIDIA's RIM service"
	default:
		// The verifier's default fixes are about evidence, not collateral.
		c.Fix = "pass the RIM file exactly as NVIDIA's RIM service returns it (SWID tag XML), or remove it from the collateral"
	}
	return &c
}

// gpuVersions returns the driver and VBIOS versions of a report, in
// lowercase, as a RIM's colloquialVersion names them.
func gpuVersions(report *Report) (driver, vbios string) {
	if v, ok := report.Response.Fields.Get(opaqueDriverVersion); ok {
		driver = strings.ToLower(strings.TrimRight(string(v), "\x00"))
	}
	if v, ok := report.Response.Fields.Get(opaqueVBIOSVersion); ok {
		vbios = strings.ToLower(vbiosVersion(v))
	}
	return driver, vbios
}

// rimServiceIDs returns the identifiers under which NVIDIA's RIM service
// publishes the driver and VBIOS RIMs of a GPU, built as the nvtrust local
// GPU verifier builds them (cc_admin_utils.py at nvtrust commit 0281730):
// NV_GPU_DRIVER_GH100_<driver> for Hopper, NV_GPU_CC_DRIVER_<chip>_<driver>
// for later chips, and NV_GPU_VBIOS_<project>_<project SKU>_<chip SKU>_<VBIOS
// version without dots>, upper case. An identifier is empty when the report
// lacks a field it needs.
func rimServiceIDs(r *gpuResult) (driverID, vbiosID string) {
	driver, vbios := gpuVersions(r.report)
	chip := product(r.chain)
	switch {
	case driver == "" || chip == "":
	case chip == "GH100":
		driverID = "NV_GPU_DRIVER_GH100_" + driver
	default:
		driverID = "NV_GPU_CC_DRIVER_" + chip + "_" + driver
	}

	parts := []string{"NV_GPU_VBIOS"}
	for _, typ := range []uint16{opaqueProject, opaqueProjectSKU, opaqueChipSKU} {
		v, _ := r.report.Response.Fields.Get(typ)
		parts = append(parts, strings.ToUpper(strings.TrimSpace(strings.TrimRight(string(v), "\x00"))))
	}
	parts = append(parts, strings.ToUpper(strings.ReplaceAll(vbios, ".", "")))
	if !slices.Contains(parts, "") {
		vbiosID = strings.Join(parts, "_")
	}
	return driverID, vbiosID
}

// gpuRIMs are the RIMs that apply to one GPU. Either may be nil.
type gpuRIMs struct {
	driver, vbios *loadedRIM
}

// rimPart is one component of gpuRIMs with its RIM, which may be nil.
type rimPart struct {
	component string
	rim       *loadedRIM
}

// parts returns the driver and the VBIOS component, in that order.
func (s gpuRIMs) parts() []rimPart {
	return []rimPart{{componentDriver, s.driver}, {componentVBIOS, s.vbios}}
}

// slot returns the field of component (componentDriver or componentVBIOS).
func (s *gpuRIMs) slot(component string) **loadedRIM {
	if component == componentDriver {
		return &s.driver
	}
	return &s.vbios
}

// gpuIdentity is the chip and the lowercase driver and VBIOS versions of a
// GPU, which a RIM's product and colloquialVersion must match.
type gpuIdentity struct {
	chip, driver, vbios string
}

func identityOf(r *gpuResult) gpuIdentity {
	driver, vbios := gpuVersions(r.report)
	return gpuIdentity{chip: product(r.chain), driver: driver, vbios: vbios}
}

// component returns the component that a RIM of product and version
// describes for this GPU, or "" when the RIM is for another version or
// chip. Versions compare ignoring case, and the product counts only when
// both it and the chip are known.
func (g gpuIdentity) component(product, version string) string {
	if product != "" && g.chip != "" && !strings.EqualFold(product, g.chip) {
		return ""
	}
	switch strings.ToLower(version) {
	case "":
		return ""
	case g.driver:
		return componentDriver
	case g.vbios:
		return componentVBIOS
	}
	return ""
}

// selectRIMs picks the RIMs whose version equals the GPU's driver or VBIOS
// version and whose product matches the GPU's chip (gpuIdentity.component).
// Two different RIMs for the same component are an error, because either
// choice could hide the other's verdict.
func selectRIMs(r *gpuResult, rims []*loadedRIM, used map[*loadedRIM]bool) (gpuRIMs, error) {
	id := identityOf(r)
	var sel gpuRIMs
	for _, rim := range rims {
		component := id.component(rim.Product, rim.Version)
		if component == "" {
			continue
		}
		slot := sel.slot(component)
		if *slot != nil {
			return sel, attest.Errorf(attest.ErrMalformed, "RIM "+rim.source,
				"two different %s RIMs, %s and %s, describe version %s", component, (*slot).source, rim.source, rim.Version).
				WithFix("pass one RIM for each driver and VBIOS version")
		}
		*slot = rim
		used[rim] = true
	}
	return sel, nil
}
