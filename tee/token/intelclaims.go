package token

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// teeClaims is the object of a claims set that contains one TEE's claims.
// It is the top level, or a nested member such as the "tdx" object of an
// Intel Trust Authority version 2 token or the "x-ms-isolation-tee" object
// of an MAA confidential VM token.
type teeClaims struct {
	all claimSet
	// path leads from the top level to the object. It is empty for the
	// top level.
	path []string
}

// at returns the path of the claim name inside the object.
func (t teeClaims) at(name string) []string {
	return append(slices.Clip(t.path), name)
}

// field returns the dotted name of a claim inside the object, for messages.
func (t teeClaims) field(name string) string {
	return strings.Join(t.at(name), ".")
}

// Sizes of the TD and enclave report fields, from the Intel TDX DCAP
// Quoting Library API (TD quote body) and the SGX report body.
const (
	tdxMeasurementSize = 48
	sgxMeasurementSize = 32
	reportDataSize     = 64
)

// tdxMeasurements are the TD report fields that Intel Trust Authority and
// MAA tokens carry under the same claim names, by claim name and
// measurement name.
var tdxMeasurements = []struct{ claim, name string }{
	{"tdx_mrtd", "mrtd"},
	{"tdx_mrseam", "mrseam"},
	{"tdx_mrsignerseam", "mrsignerseam"},
	{"tdx_mrowner", "mrowner"},
	{"tdx_mrownerconfig", "mrownerconfig"},
	{"tdx_mrconfigid", "mrconfigid"},
	{"tdx_rtmr0", "rtmr0"},
	{"tdx_rtmr1", "rtmr1"},
	{"tdx_rtmr2", "rtmr2"},
	{"tdx_rtmr3", "rtmr3"},
}

// tdxAttributes are the hexadecimal TD report fields kept as attributes,
// by claim name and attribute name (the names the DCAP verifier uses).
var tdxAttributes = []struct{ claim, name string }{
	{"tdx_td_attributes", "td_attributes"},
	{"tdx_seam_attributes", "seam_attributes"},
	{"tdx_xfam", "xfam"},
	{"tdx_tee_tcb_svn", "tee_tcb_svn"},
}

// mapTDXClaims maps the tdx_* claims of t, which Intel Trust Authority
// (its EAT profile) and MAA (its TDX EAT profile, written with Intel) name
// alike. The debug state comes from debugClaim, which differs between the
// two. A token without it is rejected, because its TD may be debuggable.
func mapTDXClaims(t teeClaims, debugClaim string, c *attest.Claims) error {
	debug, ok, err := t.all.boolean(t.at(debugClaim)...)
	if err != nil || !ok {
		return attest.Errorf(attest.ErrMalformed, t.field(debugClaim), "the debug claim is missing or not a boolean, so the TD's debug state is unknown").
			WithFix("pass the token as the attestation service issued it")
	}
	c.Debug = debug

	for _, m := range tdxMeasurements {
		v, ok, err := hexClaim(t, m.claim, tdxMeasurementSize)
		if err != nil {
			return err
		}
		if ok {
			c.SetMeasurement(m.name, v)
		}
	}
	if len(c.Measurements["mrtd"]) == 0 {
		return attest.Errorf(attest.ErrMalformed, t.field("tdx_mrtd"), "the MRTD claim is missing").
			WithFix("pass the token as the attestation service issued it")
	}
	c.Measurement = c.Measurements["mrtd"]
	c.HostData = c.Measurements["mrconfigid"]

	for _, a := range tdxAttributes {
		v, ok, err := hexClaim(t, a.claim, 0)
		if err != nil {
			return err
		}
		if ok {
			c.SetAttribute(a.name, hex.EncodeToString(v))
		}
	}
	if svn, ok, err := t.all.integer(t.at("tdx_seamsvn")...); err != nil {
		return attest.Malformed(t.field("tdx_seamsvn"), "invalid TDX module SVN claim", err)
	} else if ok {
		c.SetAttribute("seamsvn", svn)
	}
	return mapReportData(t, "tdx_report_data", c)
}

// sgxClaimNames are the claim names of the SGX report fields, which Intel
// Trust Authority and MAA name differently.
type sgxClaimNames struct {
	debug, mrenclave, mrsigner, isvProdID, isvSVN, reportData string
}

// mapSGXClaims maps the SGX report fields of t, read under names. A token
// without the debug or MRENCLAVE claim is rejected with fix, which names
// the service that issued it.
func mapSGXClaims(t teeClaims, names sgxClaimNames, fix string, c *attest.Claims) error {
	debug, ok, err := t.all.boolean(t.at(names.debug)...)
	if err != nil || !ok {
		return attest.Errorf(attest.ErrMalformed, t.field(names.debug), "the debug claim is missing or not a boolean, so the enclave's debug state is unknown").
			WithFix(fix)
	}
	c.Debug = debug

	measurements := []struct{ claim, name string }{{names.mrenclave, "mrenclave"}, {names.mrsigner, "mrsigner"}}
	for _, m := range measurements {
		v, ok, err := hexClaim(t, m.claim, sgxMeasurementSize)
		if err != nil {
			return err
		}
		if ok {
			c.SetMeasurement(m.name, v)
		}
	}
	if len(c.Measurements["mrenclave"]) == 0 {
		return attest.Errorf(attest.ErrMalformed, t.field(names.mrenclave), "the MRENCLAVE claim is missing").
			WithFix(fix)
	}
	c.Measurement = c.Measurements["mrenclave"]

	attributes := []struct{ claim, name string }{{names.isvProdID, "isvprodid"}, {names.isvSVN, "isvsvn"}}
	for _, a := range attributes {
		v, ok, err := t.all.integer(t.at(a.claim)...)
		if err != nil {
			return attest.Malformed(t.field(a.claim), "invalid claim", err)
		}
		if ok {
			c.SetAttribute(a.name, v)
		}
	}
	return mapReportData(t, names.reportData, c)
}

// hexClaim decodes a claim of hexadecimal text from t and, when size is
// not 0, requires that many bytes.
func hexClaim(t teeClaims, claim string, size int) ([]byte, bool, error) {
	v, ok, err := t.all.hexBytes(t.at(claim)...)
	if err != nil {
		return nil, true, attest.Malformed(t.field(claim), "invalid claim", err).
			WithFix("pass the token as the attestation service issued it, in which the claim is a string of hexadecimal digits")
	}
	if ok && size != 0 && len(v) != size {
		return nil, true, attest.Errorf(attest.ErrMalformed, t.field(claim), "the claim has %d bytes, want %d", len(v), size).
			WithValues(hex.EncodeToString(v), fmt.Sprintf("%d bytes", size)).
			WithFix("pass the token as the attestation service issued it")
	}
	return v, ok, nil
}

// mapReportData stores the 64-byte report data claim, when present.
func mapReportData(t teeClaims, claim string, c *attest.Claims) error {
	v, _, err := hexClaim(t, claim, reportDataSize)
	if err != nil {
		return err
	}
	c.ReportData = v
	return nil
}

// intelTCBStatuses are the values attester_tcb_status may take: the
// statuses of Intel's TCB levels, and NotDetermined.
var intelTCBStatuses = append(slices.Clip(attest.IntelTCBLevelStatuses), attest.TCBNotDetermined)

// intelRelaunchStatuses maps the two statuses with which Intel's quote
// verification library advises a TD relaunch to the launch-time status
// that Cloister keeps beside attest.TCB.RelaunchAdvised.
//
// NOTE: QVL also reports TDRelaunchAdvisedConfigurationNeeded when only the
// platform's SGX level needs configuration. The token does not say which,
// so this maps to OutOfDateConfigurationNeeded, which may be stricter than
// what the DCAP verifier derives from the same quote, never more lenient.
var intelRelaunchStatuses = map[string]string{
	"TDRelaunchAdvised":                    attest.TCBOutOfDate,
	"TDRelaunchAdvisedConfigurationNeeded": attest.TCBOutOfDateConfigurationNeeded,
}

// mapIntelTCB maps the TCB status, date and advisories that the service
// derived from Intel's TCB Info for the attester. A missing status is
// TCBNotDetermined.
func mapIntelTCB(t teeClaims, c *attest.Claims) error {
	status, ok, err := t.all.text(t.at("attester_tcb_status")...)
	if err != nil {
		return attest.Malformed(t.field("attester_tcb_status"), "invalid TCB status claim", err)
	}
	if !ok {
		status = attest.TCBNotDetermined
	}
	if launch, ok := intelRelaunchStatuses[status]; ok {
		status = launch
		c.TCB.RelaunchAdvised = true
	}
	if !slices.Contains(intelTCBStatuses, status) {
		return attest.Malformed(t.field("attester_tcb_status"), fmt.Sprintf("TCB status %q is not one of Intel's (%s)", status, strings.Join(intelTCBStatuses, ", ")), nil).
			WithFix("pass the token as the attestation service issued it")
	}
	c.TCB.Status = status
	advisories, _, err := t.all.textList(t.at("attester_advisory_ids")...)
	if err != nil {
		return attest.Malformed(t.field("attester_advisory_ids"), "invalid advisory claim", err)
	}
	c.TCB.AdvisoryIDs = advisories
	if s, ok, _ := t.all.text(t.at("attester_tcb_date")...); ok {
		if d, err := time.Parse(time.RFC3339, s); err == nil {
			c.TCB.Date = &d
		}
	}
	return nil
}
