package azurevtpm

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"maps"
	"strconv"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/tee/tpm"
)

func init() { attest.Register(Verifier{}) }

// Verifier verifies Azure confidential VM evidence. Its zero value is ready
// to use. The "snp" and "dcap" verifiers must be registered for the
// hardware report of the respective VM type.
type Verifier struct{}

// Name returns "azure-vtpm".
func (Verifier) Name() string { return string(attest.TEEAzureVTPM) }

// Detect reports whether data is Azure vTPM evidence JSON.
func (Verifier) Detect(data []byte) bool { return detect(data) }

// Check names this package records, besides those of the tpm package and
// of the hardware verifier (prefixed "snp/" or "dcap/").
const (
	CheckReportData = "report-data"
	CheckTDReport   = "tdreport"
	// CheckUserData is the HCL user data's copy of the runtime-data
	// digest, which CheckRuntimeDigest compares for evidence version 2.
	CheckUserData = "hcl-user-data"
	// CheckVMPL is the VMPL of an SEV-SNP report, which must be 0, the
	// paravisor's.
	CheckVMPL = "vmpl"
)

// Verify verifies the hardware report with the registered verifier, the
// binding of the runtime data into its report data, and the vTPM quote
// under the AK from the runtime data.
func (Verifier) Verify(ctx context.Context, evidence attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	ev, err := ParseEvidence(evidence.Data)
	if err != nil {
		return nil, err
	}
	hcl, err := ParseHCLReport(ev.HCLReport)
	if err != nil {
		return nil, err
	}

	hw, hwName, err := verifyHardware(ctx, ev, hcl, opts)
	if hw == nil {
		return nil, err
	}
	c := fromHardware(hw, hwName)
	if err != nil {
		return c, err
	}

	if err := checkVMPL(c, hcl); err != nil {
		return c, err
	}
	if err := checkReportData(c, hcl, hw); err != nil {
		return c, err
	}
	rd, err := ParseRuntimeData(hcl.VariableData)
	if err != nil {
		return c, err
	}
	ak, err := rd.AK()
	if err != nil {
		return c, err
	}
	setRuntimeAttributes(c, hcl, rd)

	a, err := tpm.VerifyQuote(c, ev.Quote, ak)
	if a == nil {
		// The quote signature failed: nothing of the vTPM is proven, but
		// the hardware report is, so its claims stay with the error.
		return c, err
	}
	c.Nonce = append(attest.Hex{}, a.Nonce()...)
	c.SetAttribute("vtpm_firmware_version", fmt.Sprintf("%#016x", a.Body.FirmwareVersion))
	if err != nil {
		return c, err
	}
	for _, i := range ev.Quote.PCRs.Indexes() {
		c.SetMeasurement("pcr"+strconv.Itoa(i), ev.Quote.PCRs.Values[i])
	}
	return c, tpm.VerifyNonce(c, opts.Nonce)
}

// verifyHardware verifies the SEV-SNP report or the TD quote with the
// registered verifier. The VCEK carried in the evidence is added to the
// caller's collateral, but the roots still come only from the caller or the
// verifier's embedded ones. The caller's nonce is for the vTPM quote, so it
// is not passed on: the hardware report data contains the runtime data hash.
func verifyHardware(ctx context.Context, ev *Evidence, hcl *HCLReport, opts attest.Options) (*attest.Claims, string, error) {
	name, data, field, want := "snp", hcl.HardwareReport, "hcl_report", attest.TEESNP
	if hcl.ReportType == ReportTypeTDX {
		name, data, field, want = "dcap", ev.TDQuote, "td_quote", attest.TEETDX
		if len(data) == 0 {
			return nil, name, attest.Malformed("td_quote", "missing: a TDX VM's evidence must carry the TD quote that signs its TDREPORT", nil)
		}
	}
	v, ok := attest.Lookup(name)
	if !ok {
		return nil, name, attest.Errorf(attest.ErrUnsupported, "hcl_report.report_type", "no %s verifier is registered to verify the hardware report", name).
			WithFix("build Cloister with the " + name + " verifier")
	}
	hwOpts, err := hardwareOptions(ev, opts)
	if err != nil {
		return nil, name, err
	}
	c, err := v.Verify(ctx, attest.Evidence{Format: name, Data: data}, hwOpts)
	if err != nil {
		return c, name, fmt.Errorf("%s hardware report: %w", name, err)
	}
	// The dcap verifier also accepts SGX quotes, whose report data an
	// enclave sets freely, so the TEE must be the one the HCL report names.
	if c.TEE != want {
		return c, name, attest.Errorf(attest.ErrBinding, field, "the hardware report is from a %s TEE, but an Azure %s VM needs a %s report", c.TEE, want, want).
			WithFix("send the report that the VM's hardware made from this HCL report")
	}
	return c, name, nil
}

// hardwareOptions returns the options for the hardware verifier: opts
// without the nonce, with the certificates of the evidence's vcek field
// added to the collateral. Only certificates that are not self-issued are
// added, because attest.Roots treats self-signed certificates in the
// collateral as the caller's roots, and a root inside the evidence must
// never be trusted by itself.
func hardwareOptions(ev *Evidence, opts attest.Options) (attest.Options, error) {
	hwOpts := opts
	hwOpts.Nonce = nil
	if len(ev.VCEK) == 0 {
		return hwOpts, nil
	}
	parsed := &collateral.Set{}
	if n, reason := parsed.AddBytes("vcek in the evidence", ev.VCEK); n == 0 {
		return hwOpts, attest.Malformed("vcek", "is not a certificate: "+reason, nil)
	}
	extra := &collateral.Set{}
	for _, it := range parsed.OfKind(collateral.KindCertificate) {
		if !bytes.Equal(it.Certificate.RawIssuer, it.Certificate.RawSubject) {
			extra.Add(it)
		}
	}
	if len(extra.Items) == 0 {
		return hwOpts, attest.Malformed("vcek", "holds no certificate that is not self-issued, so it carries no VCEK", nil).
			WithFix("send the VCEK certificate in the vcek field; AMD's roots come from the embedded certificates or --collateral")
	}
	hwOpts.Collateral = withExtra{base: opts.Collateral, extra: extra}
	return hwOpts, nil
}

// withExtra serves the base source's collateral plus extra items.
type withExtra struct {
	base  collateral.Source
	extra *collateral.Set
}

func (w withExtra) Collateral(ctx context.Context, q collateral.Query) (*collateral.Set, error) {
	out := &collateral.Set{}
	if w.base != nil {
		s, err := w.base.Collateral(ctx, q)
		if err != nil {
			return nil, err
		}
		out.Merge(s)
	}
	out.Merge(w.extra)
	return out, nil
}

// fromHardware starts the claims from the hardware verifier's: identity,
// measurements, debug, TCB, chain and checks, the checks prefixed with the
// verifier's name.
func fromHardware(hw *attest.Claims, name string) *attest.Claims {
	c := &attest.Claims{
		TEE:          attest.TEEAzureVTPM,
		Product:      hw.Product,
		Emulated:     hw.Emulated,
		TrustAnchor:  hw.TrustAnchor,
		Measurement:  hw.Measurement,
		Measurements: maps.Clone(hw.Measurements),
		ReportData:   hw.ReportData,
		HostData:     hw.HostData,
		Debug:        hw.Debug,
		TCB:          hw.TCB,
		ChipID:       hw.ChipID,
		Platform:     hw.Platform,
		SigningKey:   hw.SigningKey,
		Chain:        hw.Chain,
		Collateral:   hw.Collateral,
		VerifiedAt:   hw.VerifiedAt,
		Warnings:     hw.Warnings,
	}
	// The SEV-SNP MEASUREMENT goes by its specification name, as the TDX
	// MRTD does in the DCAP claims.
	if name == "snp" && len(hw.Measurement) > 0 && c.Measurements["measurement"] == nil {
		c.SetMeasurement("measurement", hw.Measurement)
	}
	for _, ch := range hw.Checks {
		ch.Name = name + "/" + ch.Name
		c.Checks = append(c.Checks, ch)
	}
	c.SetAttribute("hardware", name)
	if len(hw.Attributes) > 0 {
		c.SetAttribute("hardware_attributes", hw.Attributes)
	}
	return c
}

// snpVMPLOffset is the offset of VMPL in the SEV-SNP ATTESTATION_REPORT.
const snpVMPLOffset = 0x30

// checkVMPL requires the SEV-SNP report to come from VMPL 0, where Azure's
// paravisor runs. The guest OS runs at a higher VMPL. Software at VMPL n
// can request a report for VMPL n or above with report data of its
// choice, so a report from VMPL 1 to 3 proves nothing about the runtime
// data.
//
// NOTE: TDX has no counterpart field. A TD quote does not say whether the
// paravisor (the L1 VMM of a partitioned TD) or the guest asked for the
// TDREPORT, so the TDX path relies on the paravisor keeping the guest from
// requesting one.
func checkVMPL(c *attest.Claims, hcl *HCLReport) error {
	if hcl.ReportType != ReportTypeSNP {
		return nil
	}
	vmpl := binary.LittleEndian.Uint32(hcl.HardwareReport[snpVMPLOffset:])
	if vmpl == 0 {
		c.Pass(CheckVMPL)
		return nil
	}
	c.Fail(CheckVMPL, fmt.Sprintf("the SEV-SNP report is from VMPL %d, not from the paravisor's VMPL 0", vmpl))
	return attest.Errorf(attest.ErrBinding, "hcl_report.VMPL", "the SEV-SNP report is from VMPL %d, not from VMPL 0 where the paravisor runs, so software other than the paravisor chose its report data and HCLAkPub is not vouched for", vmpl).
		WithValues(fmt.Sprint(vmpl), "0").
		WithFix("send the HCL report that the paravisor wrote to the vTPM, unmodified, not a report the guest requested itself")
}

// checkReportData requires the hardware report data to be the digest of
// the runtime data, zero-padded, which is what binds HCLAkPub, and so the
// vTPM, to the hardware. For TDX the TDREPORT inside the HCL report must
// carry the same report data as the signed TD quote.
func checkReportData(c *attest.Claims, hcl *HCLReport, hw *attest.Claims) error {
	h := hcl.Hash.New()
	h.Write(hcl.VariableData)
	want := h.Sum(nil)
	if len(hw.ReportData) < len(want) || subtle.ConstantTimeCompare(hw.ReportData[:len(want)], want) != 1 {
		c.Fail(CheckReportData, "the report data does not start with the digest of the runtime data")
		return attest.Errorf(attest.ErrBinding, "report data", "the hardware report data does not bind the HCL runtime data, so the vTPM attestation key HCLAkPub is not vouched for by the hardware").
			WithValues(hw.ReportData.String(), "a value starting with "+attest.Hex(want).String()).
			WithFix("send the HCL report unmodified, as the paravisor produced it")
	}
	if tail := hw.ReportData[len(want):]; !allZero(tail) {
		c.Fail(CheckReportData, "the report data has nonzero bytes after the digest of the runtime data")
		return attest.Errorf(attest.ErrBinding, "report data", "the hardware report data has nonzero bytes after the %d-byte digest of the HCL runtime data, but the paravisor zero-pads the digest", len(want)).
			WithValues(hw.ReportData.String(), attest.Hex(want).String()+" followed by zeros").
			WithFix("send the HCL report and hardware report unmodified, as the paravisor produced them")
	}
	c.Pass(CheckReportData)

	if hcl.ReportType == ReportTypeTDX {
		if !bytes.Equal(hcl.tdReportData(), hw.ReportData) {
			c.Fail(CheckTDReport, "the TDREPORT in the HCL report carries other report data than the TD quote")
			return attest.Errorf(attest.ErrBinding, "report data", "the TDREPORT in the HCL report carries other report data than the signed TD quote").
				WithValues(attest.Hex(hcl.tdReportData()).String(), hw.ReportData.String()).
				WithFix("send the TD quote made from this HCL report")
		}
		c.Pass(CheckTDReport)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

func setRuntimeAttributes(c *attest.Claims, hcl *HCLReport, rd *RuntimeData) {
	c.SetAttribute("hcl", map[string]any{
		"version":          hcl.Version,
		"report_type":      hcl.ReportType,
		"vm_configuration": rd.VMConfiguration,
		"user_data":        rd.UserData,
	})
}
