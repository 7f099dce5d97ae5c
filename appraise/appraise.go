// Package appraise judges verified Claims against the caller's expectations
// without a policy file: debug, emulated TEEs, TCB status, required checks
// that could not run, and expected measurement, report data, chip ID,
// minimum TCB, minimum Intel TCB evaluation data number and maximum SEV-SNP
// VMPL. The last two apply to the SGX, TDX and SEV-SNP claims of composite
// evidence and of MAA and Intel Trust Authority tokens too (HardwareTEE).
// The default attestation policy of the policy package applies the same
// rules with the same messages, so a decision reads the same whichever
// path made it. Both reject the TCB status NoMatchingTcbLevel whatever the
// accepted statuses list.
package appraise

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cloister-dev/cloister/attest"
)

// DefaultTCBStatuses are the TCB statuses accepted when Options names none.
// UpToDate needs no action. SWHardeningNeeded means the platform is patched
// and only enclave software can add mitigations, which the workload owner,
// not the platform, controls. Every other status leaves a known
// vulnerability open on the platform, or cannot be judged, and is rejected.
var DefaultTCBStatuses = []string{attest.TCBUpToDate, attest.TCBSWHardeningNeeded}

// noMatchingLevelReason is the reason, given in errors, that NoMatchingTcbLevel is never accepted.
const noMatchingLevelReason = "no TCB level of Intel's TCB Info matches the platform (or no level of the QE Identity matches the quoting enclave), so its TCB is unknown, and Intel's Quote Verification Library fails such a quote with TCB_NOT_SUPPORTED"

// ValidateTCBStatuses returns an error for a status in statuses that no
// appraisal accepts: NoMatchingTcbLevel, and any name that no verifier
// reports, such as a misspelt one, which would silently match nothing.
// CheckTCBStatus and the default attestation policy reject
// NoMatchingTcbLevel even when Options.TCBStatuses or the policy's
// tcb_statuses list it.
func ValidateTCBStatuses(statuses []string) error {
	for _, s := range statuses {
		switch {
		case s == attest.TCBNoMatchingLevel:
			return fmt.Errorf("TCB status %s can never be accepted: %s", s, noMatchingLevelReason)
		case s != attest.TCBNotDetermined && !slices.Contains(attest.IntelTCBLevelStatuses, s):
			return fmt.Errorf("TCB status %q is unknown, so it would match no evidence; use one of %s or %s, spelled as Intel spells them",
				s, strings.Join(attest.IntelTCBLevelStatuses, ", "), attest.TCBNotDetermined)
		}
	}
	return nil
}

// Options are the appraisal rules. The zero value is the strict default:
// no debug, no emulated TEE, only DefaultTCBStatuses, and every required
// check must have run.
type Options struct {
	// AllowDebug accepts a TEE whose memory a debugger can read.
	AllowDebug bool
	// AllowEmulated accepts evidence from an emulated TEE signed by a
	// development root.
	AllowEmulated bool
	// TCBStatuses replaces DefaultTCBStatuses when not empty. Listing
	// NoMatchingTcbLevel has no effect (see ValidateTCBStatuses).
	TCBStatuses []string
	// AllowUndeterminedTCB accepts evidence whose TCB status could not be
	// determined and waives the required checks that could not run for
	// lack of collateral (TCB Info, QE Identity, CRLs).
	AllowUndeterminedTCB bool
	// Measurement, ReportData, HostData and ChipID, when set, must equal
	// the claims' values.
	Measurement attest.Hex
	ReportData  attest.Hex
	HostData    attest.Hex
	ChipID      attest.Hex
	// MinTCB maps TCB component names to minimum values.
	MinTCB map[string]uint64
	// MinTCBEvaluationDataNumber, when not 0, is the lowest accepted Intel
	// TCB evaluation data number of the TCB Info and QE Identity that SGX
	// and TDX evidence was verified with. Zero sets no minimum.
	MinTCBEvaluationDataNumber uint32
	// MaxVMPL, when not nil, is the highest accepted VMPL (0 to 3) of an
	// SEV-SNP report. Nil accepts any VMPL.
	MaxVMPL *uint32
}

// Reason is one rule that a claim broke.
type Reason struct {
	// Rule names the rule ("debug", "tcb-status", "measurement", ...).
	Rule string `json:"rule"`
	// Claim is the claim the rule looked at.
	Claim string `json:"claim"`
	// Value and Expected are the claim's value and what the rule requires.
	Value    string `json:"value,omitempty"`
	Expected string `json:"expected,omitempty"`
	// Message states in plain words what failed and what to do.
	Message string `json:"message"`
}

// Decision is the outcome of an appraisal.
type Decision struct {
	Accepted bool     `json:"accepted"`
	Reasons  []Reason `json:"reasons,omitempty"`
}

// Err returns nil for an accepted decision and otherwise an
// attest.ErrAppraisal error whose message lists every reason.
func (d *Decision) Err() error {
	if d.Accepted {
		return nil
	}
	if len(d.Reasons) == 0 {
		// A policy written elsewhere may reject without a reason.
		return &attest.Error{Kind: attest.ErrAppraisal, Field: "policy", Reason: "the policy rejected the evidence and gave no reason"}
	}
	msgs := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		msgs[i] = r.Message
	}
	return &attest.Error{Kind: attest.ErrAppraisal, Field: d.Reasons[0].Claim, Reason: strings.Join(msgs, "; ")}
}

// Appraise applies o to c. Every rule runs, so the decision lists every
// reason, not only the first. Nil claims are rejected.
func Appraise(c *attest.Claims, o Options) *Decision {
	if c == nil {
		return &Decision{Reasons: []Reason{{Rule: "missing-claims", Claim: "claims",
			Message: "there are no verified claims to appraise, so verify the evidence first and appraise the claims it proves"}}}
	}
	d := &Decision{}
	rules := []func(*attest.Claims, Options) []Reason{
		CheckEmulated, CheckDebug, CheckTCBStatus, CheckFailedChecks, CheckRequiredChecks,
		CheckMeasurement, CheckReportData, CheckHostData, CheckChipID, CheckMinTCB,
		CheckMinTCBEvaluationDataNumber, CheckMaxVMPL,
	}
	for _, rule := range rules {
		d.Reasons = append(d.Reasons, rule(c, o)...)
	}
	d.Accepted = len(d.Reasons) == 0
	return d
}

// CheckEmulated rejects emulated evidence unless allowed.
func CheckEmulated(c *attest.Claims, o Options) []Reason {
	if !c.Emulated || o.AllowEmulated {
		return nil
	}
	return flagReason("emulated", "evidence comes from an emulated TEE signed by a development root, which proves no hardware; pass --allow-emulated only for development")
}

// CheckDebug rejects a debug TEE unless allowed.
func CheckDebug(c *attest.Claims, o Options) []Reason {
	if !c.Debug || o.AllowDebug {
		return nil
	}
	return flagReason("debug", fmt.Sprintf("the %s TEE runs in debug mode, so its memory is readable by the host; rebuild it without debug, or pass --allow-debug for testing", c.TEE))
}

// flagReason rejects the boolean claim name, such as debug or emulated,
// for being true. The default attestation policy builds the same reason
// with its flag_reason function.
func flagReason(name, message string) []Reason {
	return []Reason{{Rule: name, Claim: name, Value: "true", Expected: "false", Message: message}}
}

// StatusPhrase returns a TCB status in plain words.
func StatusPhrase(status string) string {
	switch status {
	case attest.TCBUpToDate:
		return "up to date"
	case attest.TCBSWHardeningNeeded:
		return "software hardening needed"
	case attest.TCBConfigurationNeeded:
		return "configuration needed"
	case attest.TCBConfigurationAndSWHardeningNeeded:
		return "configuration and software hardening needed"
	case attest.TCBOutOfDate:
		return "out of date"
	case attest.TCBOutOfDateConfigurationNeeded:
		return "out of date and configuration needed"
	case attest.TCBRevoked:
		return "revoked"
	case attest.TCBNoMatchingLevel:
		return "no matching TCB level: the platform is below every TCB level the vendor lists (Intel: TCB level not supported)"
	case attest.TCBNotDetermined:
		return "not determined: no TCB Info for this platform was supplied"
	}
	return status
}

// CheckTCBStatus rejects a TCB status outside the accepted set, and
// NoMatchingTcbLevel always. Claims with no status (TEEs that have none)
// pass.
func CheckTCBStatus(c *attest.Claims, o Options) []Reason {
	status := c.TCB.Status
	if status == "" {
		return nil
	}
	if status == attest.TCBNotDetermined && o.AllowUndeterminedTCB {
		return nil
	}
	accepted := o.TCBStatuses
	if len(accepted) == 0 {
		accepted = DefaultTCBStatuses
	}
	if status != attest.TCBNoMatchingLevel && slices.Contains(accepted, status) {
		return nil
	}
	msg := fmt.Sprintf("TCB status %s (%s) is not accepted", status, StatusPhrase(status))
	if len(c.TCB.AdvisoryIDs) > 0 {
		msg += ", advisories " + strings.Join(c.TCB.AdvisoryIDs, ", ")
	}
	switch status {
	case attest.TCBNoMatchingLevel:
		msg += "; update the platform firmware to a TCB level that Intel's TCB Info lists, because no option accepts a platform whose TCB is unknown"
	case attest.TCBNotDetermined:
		msg += "; supply the TCB Info and QE Identity for this platform with --collateral, or pass --allow-undetermined-tcb"
	default:
		if c.TCB.RelaunchAdvised {
			msg += "; relaunch the TD, because the platform already runs an up-to-date TDX module (TD relaunch advised)"
			if status == attest.TCBOutOfDateConfigurationNeeded {
				msg += ", and change the platform configuration as the advisories require"
			}
			msg += fmt.Sprintf(", or accept the status with --tcb-status %s", status)
			break
		}
		msg += fmt.Sprintf("; update the platform firmware, or accept the status with --tcb-status %s", status)
	}
	accepted = slices.DeleteFunc(slices.Clone(accepted), func(s string) bool { return s == attest.TCBNoMatchingLevel })
	return []Reason{{Rule: "tcb-status", Claim: "tcb.status", Value: status,
		Expected: strings.Join(accepted, " or "), Message: msg}}
}

// CheckFailedChecks rejects claims in which a check failed, including a
// failure that a verifier recorded without returning an error (the TPM
// verifier does so for an AK that is not a restricted signing key). No
// option waives it.
func CheckFailedChecks(c *attest.Claims, _ Options) []Reason {
	var out []Reason
	for _, ch := range c.Checks {
		if ch.Result == attest.CheckFailed {
			out = append(out, Reason{Rule: "failed-check", Claim: "checks." + ch.Name, Value: string(ch.Result),
				Expected: string(attest.CheckPassed),
				Message:  fmt.Sprintf("check %s failed: %s", ch.Name, ch.Detail)})
		}
	}
	return out
}

// CheckRequiredChecks rejects claims in which a required check could not
// run, typically because collateral was missing, or has a result other
// than passed, failed or not checked. AllowUndeterminedTCB waives only
// the checks that lacked collateral: a check that could not run for
// another reason (TEE claims a token verifier does not map) still rejects.
func CheckRequiredChecks(c *attest.Claims, o Options) []Reason {
	var out []Reason
	for _, ch := range c.Checks {
		if !ch.Required || ch.Result == attest.CheckPassed || ch.Result == attest.CheckFailed {
			continue
		}
		if ch.Collateral && o.AllowUndeterminedTCB && ch.Result == attest.CheckNotChecked {
			continue
		}
		msg := fmt.Sprintf("required check %s did not run: %s", ch.Name, ch.Detail)
		if ch.Result != attest.CheckNotChecked {
			msg = fmt.Sprintf("required check %s has the result %q, which is not passed, failed or not-checked; appraise the claims as the verifier returned them", ch.Name, ch.Result)
		}
		out = append(out, Reason{Rule: "required-check", Claim: "checks." + ch.Name, Value: string(ch.Result),
			Expected: string(attest.CheckPassed), Message: msg})
	}
	return out
}

// checkEqual rejects got when it differs from a non-empty want. fix ends
// the message with what to do next.
func checkEqual(rule, claim string, got, want attest.Hex, fix string) []Reason {
	if len(want) == 0 || bytes.Equal(got, want) {
		return nil
	}
	msg := fmt.Sprintf("%s %s differs from the expected %s", claim, got, want)
	if len(got) != len(want) {
		msg += fmt.Sprintf(": the %s has %d bytes, the expected value %d", claim, len(got), len(want))
	}
	msg += "; " + fix
	return []Reason{{Rule: rule, Claim: claim, Value: got.String(), Expected: want.String(), Message: msg}}
}

// zeroPadded returns want extended with zero bytes to the length of got
// when it is shorter, as TEEs pad a short value into a fixed-size field.
func zeroPadded(want, got attest.Hex) attest.Hex {
	if len(want) > 0 && len(want) < len(got) {
		return append(slices.Clone(want), make([]byte, len(got)-len(want))...)
	}
	return want
}

// CheckMeasurement compares the primary measurement.
func CheckMeasurement(c *attest.Claims, o Options) []Reason {
	return checkEqual("measurement", "measurement", c.Measurement, o.Measurement,
		"the TEE runs other code or firmware than expected, so deploy the expected image, or correct --measurement")
}

// CheckReportData compares the report data. A shorter expected value is
// compared with the start of the report data, zero-padded as TEEs pad it.
func CheckReportData(c *attest.Claims, o Options) []Reason {
	return checkEqual("report-data", "report data", c.ReportData, zeroPadded(o.ReportData, c.ReportData),
		"the evidence binds other report data, so collect fresh evidence over the expected value, or correct --report-data")
}

// CheckHostData compares the host data (SEV-SNP HOST_DATA, TDX MRCONFIGID).
// A shorter expected value, such as a SHA-256 digest checked against the
// 48 bytes of MRCONFIGID, is zero-padded as the host pads it.
func CheckHostData(c *attest.Claims, o Options) []Reason {
	return checkEqual("host-data", "host data", c.HostData, zeroPadded(o.HostData, c.HostData),
		"the host launched the TEE with other host data, so launch it with the expected value, or correct --host-data")
}

// CheckChipID compares the chip ID.
func CheckChipID(c *attest.Claims, o Options) []Reason {
	return checkEqual("chip-id", "chip ID", c.ChipID, o.ChipID,
		"the evidence comes from another processor, so attest on the expected machine, or correct --chip-id")
}

// CheckMinTCB requires each named TCB component to be at least its minimum.
// A component the claims do not have is a failure, not a pass.
func CheckMinTCB(c *attest.Claims, o Options) []Reason {
	names := make([]string, 0, len(o.MinTCB))
	for n := range o.MinTCB {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Reason
	for _, name := range names {
		min := o.MinTCB[name]
		got, ok := c.TCB.Component(name)
		switch {
		case !ok:
			out = append(out, Reason{Rule: "min-tcb", Claim: "tcb." + name, Expected: ">= " + strconv.FormatUint(min, 10),
				Message: fmt.Sprintf("TCB component %s is not in the %s claims; name one of the components the evidence reports", name, c.TEE)})
		case got < min:
			out = append(out, Reason{Rule: "min-tcb", Claim: "tcb." + name, Value: strconv.FormatUint(got, 10),
				Expected: ">= " + strconv.FormatUint(min, 10),
				Message:  fmt.Sprintf("TCB component %s is %d, below the minimum %d; update the platform firmware", name, got, min)})
		}
	}
	return out
}

// ParseMinTCB parses "name=value,name=value" into a MinTCB map. Values are
// decimal, or hexadecimal after 0x. A leading zero does not mean octal, so
// microcode=0213 is 213. A name given twice is an error, because the later
// value would otherwise replace the earlier one without notice.
func ParseMinTCB(s string) (map[string]uint64, error) {
	out := map[string]uint64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("invalid minimum TCB %q: want name=value pairs separated by commas, such as bootloader=4,snp=22,microcode=213", part)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("invalid minimum TCB: %s is given twice; give each component once", name)
		}
		v, err := parseMinTCBValue(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("invalid minimum TCB value %q for %s: want a decimal number or 0x followed by hexadecimal digits", value, name)
		}
		out[name] = v
	}
	return out, nil
}

// parseMinTCBValue parses a decimal number, or a hexadecimal one after 0x
// or 0X. strconv.ParseUint with base 0 would also read 0b, 0o, a leading
// zero as octal and digits separated by underscores.
func parseMinTCBValue(s string) (uint64, error) {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		return strconv.ParseUint(s[2:], 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// TCBEvaluationDataNumberAttribute names the claims attribute in which the
// SGX and TDX verifier reports the lower of the tcbEvaluationDataNumber
// values of the TCB Info and the QE Identity it used, as Intel's QVL
// reports tcb_eval_ref_num in its supplemental data
// (sgx_ql_qv_supplemental_t in sgx_qve_header.h).
const TCBEvaluationDataNumberAttribute = "tcb_evaluation_data_number"

// maaIsolationTEEs and itaAttesterTypes map the TEE that an MAA token
// (attribute isolation_tee) and an Intel Trust Authority token (attribute
// attester_type) describe to the hardware TEE.
var (
	maaIsolationTEEs = map[string]attest.TEE{"sevsnpvm": attest.TEESNP, "tdxvm": attest.TEETDX, "sgx": attest.TEESGX}
	itaAttesterTypes = map[string]attest.TEE{"TDX": attest.TEETDX, "SGX": attest.TEESGX}
)

// maaVMPLAttribute is the attribute in which an MAA SEV-SNP token states
// the VMPL of the report.
const maaVMPLAttribute = "x-ms-sevsnpvm-vmpl"

// HardwareTEE returns the TEE whose hardware claims c carries and the TEE
// of the evidence that carries them. For SEV-SNP, SGX and TDX claims both
// are c.TEE. Composite claims carry those of their CPU part (attribute
// cpu_tee), and MAA and Intel Trust Authority tokens those of the TEE the
// service appraised (attributes isolation_tee and attester_type). The
// hardware TEE is empty for other claims. The default attestation policy
// derives the same two values as hardware_tee and evidence_tee.
func HardwareTEE(c *attest.Claims) (hardware, evidence attest.TEE) {
	evidence = c.TEE
	if evidence == attest.TEEComposite {
		cpu, _ := c.Attributes["cpu_tee"].(string)
		evidence = attest.TEE(cpu)
	}
	switch evidence {
	case attest.TEESNP, attest.TEESGX, attest.TEETDX:
		return evidence, evidence
	case attest.TEEMAAToken:
		s, _ := c.Attributes["isolation_tee"].(string)
		return maaIsolationTEEs[s], evidence
	case attest.TEEITAToken:
		s, _ := c.Attributes["attester_type"].(string)
		return itaAttesterTypes[s], evidence
	}
	return "", evidence
}

// isToken reports whether tee is that of an attestation token.
func isToken(tee attest.TEE) bool {
	return tee == attest.TEEMAAToken || tee == attest.TEEITAToken
}

// CheckMinTCBEvaluationDataNumber rejects SGX and TDX claims whose TCB
// evaluation data number is below o.MinTCBEvaluationDataNumber, also when
// composite evidence or an attestation token carries them (see
// HardwareTEE). Intel raises the number with each TCB recovery event, so
// TCB Info and QE Identity with a lower number predate a recovery and may
// rate a platform that now needs an update as up to date. Claims without
// the attribute reject, because no TCB Info or QE Identity was verified,
// or, for a token, because the token does not state the number: neither
// Intel Trust Authority nor MAA tokens have a claim for it. Other TEEs have
// no such number and pass.
func CheckMinTCBEvaluationDataNumber(c *attest.Claims, o Options) []Reason {
	minimum := o.MinTCBEvaluationDataNumber
	hardware, evidence := HardwareTEE(c)
	if minimum == 0 || (hardware != attest.TEESGX && hardware != attest.TEETDX) {
		return nil
	}
	claim := "attributes." + TCBEvaluationDataNumberAttribute
	expected := ">= " + strconv.FormatUint(uint64(minimum), 10)
	got, ok := attributeUint(c, TCBEvaluationDataNumberAttribute)
	if !ok {
		msg := fmt.Sprintf("the %s claims have no TCB evaluation data number, because no TCB Info or QE Identity was verified, so the minimum %d cannot be checked; supply the current TCB Info and QE Identity with --collateral, or remove --min-tcb-evaluation-data-number", c.TEE, minimum)
		if isToken(evidence) {
			msg = fmt.Sprintf("the %s token does not state the TCB evaluation data number of the TCB Info and QE Identity that its service used for the %s evidence, so the minimum %d cannot be checked; verify the %s quote itself with the current TCB Info and QE Identity (--collateral), or remove --min-tcb-evaluation-data-number", evidence, hardware, minimum, hardware)
		}
		return []Reason{{Rule: "min-tcb-evaluation-data-number", Claim: claim, Expected: expected, Message: msg}}
	}
	if got >= uint64(minimum) {
		return nil
	}
	return []Reason{{Rule: "min-tcb-evaluation-data-number", Claim: claim, Value: strconv.FormatUint(got, 10), Expected: expected,
		Message: fmt.Sprintf("TCB evaluation data number %d (the lower of the TCB Info's and the QE Identity's) is below the minimum %d, so the collateral predates a TCB recovery event; fetch the current TCB Info and QE Identity from Intel PCS, or lower --min-tcb-evaluation-data-number", got, minimum)}}
}

// CheckMaxVMPL rejects SEV-SNP claims whose VMPL is above o.MaxVMPL, also
// when composite evidence or an MAA token carries them (see HardwareTEE).
// An MAA token states the VMPL as x-ms-sevsnpvm-vmpl. Software at VMPL n
// can request reports for VMPL n and every higher (less privileged) VMPL
// with report data of its choice. A report for VMPL k therefore proves
// only that software at VMPL k or lower chose its report data. Claims
// without the VMPL are rejected. Other TEEs have no VMPL and pass, and the
// Azure vTPM verifier itself requires VMPL 0.
func CheckMaxVMPL(c *attest.Claims, o Options) []Reason {
	hardware, evidence := HardwareTEE(c)
	if o.MaxVMPL == nil || hardware != attest.TEESNP {
		return nil
	}
	maximum := *o.MaxVMPL
	expected := "<= " + strconv.FormatUint(uint64(maximum), 10)
	attribute := "vmpl"
	if evidence == attest.TEEMAAToken {
		attribute = maaVMPLAttribute
	}
	claim := "attributes." + attribute
	got, ok := attributeUint(c, attribute)
	if !ok {
		msg := fmt.Sprintf("the %s claims have no VMPL, so the maximum VMPL %d cannot be checked; appraise the claims as the verifier returned them, or remove --max-vmpl", c.TEE, maximum)
		if evidence == attest.TEEMAAToken {
			msg = fmt.Sprintf("the %s token does not state the VMPL of the SEV-SNP report as a number in %s, so the maximum VMPL %d cannot be checked; pass the token as Microsoft Azure Attestation issued it, or remove --max-vmpl", evidence, maaVMPLAttribute, maximum)
		}
		return []Reason{{Rule: "max-vmpl", Claim: claim, Expected: expected, Message: msg}}
	}
	if got <= uint64(maximum) {
		return nil
	}
	return []Reason{{Rule: "max-vmpl", Claim: claim, Value: strconv.FormatUint(got, 10), Expected: expected,
		Message: fmt.Sprintf("the SEV-SNP report is from VMPL %d, above the maximum VMPL %d, so software less privileged than VMPL %d may have chosen its report data; request the report from VMPL %d or lower, or raise --max-vmpl to %d", got, maximum, maximum, maximum, got)}}
}

// attributeUint returns the attribute name as a non-negative integer. A
// verifier stores an integer type, a token verifier the json.Number of the
// token's claim, and claims decoded from JSON contain a float64. A
// json.Number is read as a float64, so that 1.0 is 1, as in Rego.
func attributeUint(c *attest.Claims, name string) (uint64, bool) {
	v := c.Attributes[name]
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		if err != nil {
			return 0, false
		}
		v = f
	}
	switch v := v.(type) {
	case int:
		return uint64(v), v >= 0
	case int64:
		return uint64(v), v >= 0
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case float64:
		if v < 0 || v > math.MaxUint32 || v != math.Trunc(v) {
			return 0, false
		}
		return uint64(v), true
	}
	return 0, false
}
