package dcap

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// The TCB evaluation follows the rules of Intel's Quote Verification
// Library (QVL, QuoteVerification/QVL in intel/SGXDataCenterAttestationPrimitives,
// Verifiers/Checks/TcbLevelCheck.cpp and TdxModuleCheck.cpp):
//
//   - The platform level is the first TCB level, in QVL's descending
//     order (sortLevels), whose 16 SGX components and PCESVN are each at most the
//     PCK certificate's. For TDX, its 16 TDX components must also each be
//     at most the TD report's TEE_TCB_SVN. When TEE_TCB_SVN[1] (the TDX module
//     major version) is not zero, the first two bytes are judged by the TDX
//     module identity instead and are skipped here.
//   - The TDX module identity "TDX_<TEE_TCB_SVN[1] in hex>" must exist and
//     match MRSIGNERSEAM and SEAMATTRIBUTES; the module's status is that of
//     its first level whose ISVSVN is at most TEE_TCB_SVN[0].
//   - The QE's status is that of the QE Identity's first level whose ISVSVN
//     is at most the QE report's ISVSVN.
//   - An OutOfDate module or QE turns UpToDate and SWHardeningNeeded into
//     OutOfDate, and the two configuration statuses into
//     OutOfDateConfigurationNeeded. A Revoked one makes the result Revoked.
//     A platform, module or QE below every level gives NoMatchingTcbLevel.
//   - A TDX 1.5 TD whose status and module status are OutOfDate gets
//     relaunch advice when TEE_TCB_SVN2, the module running now, meets the
//     latest levels (Verifiers/Checks/TDRelaunchCheck.cpp). QVL reports
//     this as the statuses TDRelaunchAdvised and
//     TDRelaunchAdvisedConfigurationNeeded; Cloister keeps the OutOfDate
//     status and sets attest.TCB.RelaunchAdvised, so that a policy that
//     rejects OutOfDate still rejects the TD until it is relaunched.

// TCBEvaluation is the outcome of matching a platform against TCB Info and
// QE Identity.
type TCBEvaluation struct {
	// Status is the combined status.
	Status string
	// PlatformStatus, ModuleStatus and QEStatus are the statuses of the
	// matched levels; empty when not evaluated.
	PlatformStatus string
	ModuleStatus   string
	QEStatus       string
	// AdvisoryIDs is the sorted union of the matched levels' advisories.
	AdvisoryIDs []string
	// Date is the earliest tcbDate of the matched levels.
	Date *time.Time
	// RelaunchAdvised is the outcome of AdviseRelaunch.
	RelaunchAdvised bool
}

func (e *TCBEvaluation) addLevel(date time.Time, advisories []string) {
	for _, a := range advisories {
		if !slices.Contains(e.AdvisoryIDs, a) {
			e.AdvisoryIDs = append(e.AdvisoryIDs, a)
		}
	}
	slices.Sort(e.AdvisoryIDs)
	if !date.IsZero() && (e.Date == nil || date.Before(*e.Date)) {
		d := date.UTC()
		e.Date = &d
	}
}

// matchPlatformLevel returns the first TCB level that the platform meets,
// or nil when it meets none.
func matchPlatformLevel(info *TCBInfo, pck *PCKExtensions, td *TDReport) *TCBLevel {
	for i := range info.TCBLevels {
		l := &info.TCBLevels[i]
		if int(pck.PCESVN) < l.TCB.PCESVN || !componentsMet(pck.CompSVN[:], l.TCB.SGXComponents, 0) {
			continue
		}
		if td != nil && info.ID == "TDX" {
			start := 0
			if td.TEETCBSVN[1] > 0 {
				start = 2
			}
			if !componentsMet(td.TEETCBSVN[:], l.TCB.TDXComponents, start) {
				continue
			}
		}
		return l
	}
	return nil
}

func componentsMet(have []byte, level []TCBComponent, start int) bool {
	if len(level) != len(have) {
		return false
	}
	for i := start; i < len(have); i++ {
		if int(have[i]) < level[i].SVN {
			return false
		}
	}
	return true
}

// matchISVSVN returns the first level whose ISVSVN is at most svn.
func matchISVSVN(levels []ISVSVNTCBLevel, svn int) *ISVSVNTCBLevel {
	for i := range levels {
		if svn >= levels[i].TCB.ISVSVN {
			return &levels[i]
		}
	}
	return nil
}

// moduleStatuses are the statuses QVL accepts in a TDX module's TCB levels
// (VALID_MODULE_TCB_STATUSES in TcbStatus.h).
var moduleStatuses = []string{attest.TCBUpToDate, attest.TCBOutOfDate, attest.TCBRevoked}

func checkStatusName(field, status string, allowed []string) error {
	if !slices.Contains(allowed, status) {
		return attest.Malformed(field, fmt.Sprintf("TCB status %q is not one of %s", status, strings.Join(allowed, ", ")), nil).
			WithFix("fetch the TCB Info and QE Identity again from Intel PCS")
	}
	return nil
}

// EvaluatePlatform matches the platform (and, for TDX, the TD report's TCB
// and TDX module) against info. The FMSPC and PCE ID must already match.
func EvaluatePlatform(info *TCBInfo, pck *PCKExtensions, td *TDReport) (*TCBEvaluation, error) {
	tdx := td != nil && info.ID == "TDX"
	// QVL checks the TDX module's signer and attributes before it matches
	// a TCB level, so that a foreign module fails even on a platform below
	// every level instead of getting a status a policy might accept.
	var module *ISVSVNTCBLevel
	if tdx {
		var err error
		if td.TEETCBSVN[1] == 0 {
			err = matchTDXModule(info, td)
		} else {
			module, err = matchModuleIdentity(info, td)
		}
		if err != nil {
			return nil, err
		}
	}

	ev := &TCBEvaluation{}
	level := matchPlatformLevel(info, pck, td)
	if level == nil {
		ev.Status = attest.TCBNoMatchingLevel
		ev.PlatformStatus = attest.TCBNoMatchingLevel
		return ev, nil
	}
	if err := checkStatusName("tcbInfo.tcbLevels.tcbStatus", level.TCBStatus, attest.IntelTCBLevelStatuses); err != nil {
		return nil, err
	}
	ev.PlatformStatus = level.TCBStatus
	ev.Status = level.TCBStatus
	ev.addLevel(level.TCBDate, level.AdvisoryIDs)

	if !tdx || td.TEETCBSVN[1] == 0 {
		return ev, nil
	}
	if module == nil {
		ev.ModuleStatus = attest.TCBNoMatchingLevel
		ev.Status = attest.TCBNoMatchingLevel
		return ev, nil
	}
	if err := checkStatusName("tcbInfo.tdxModuleIdentities.tcbLevels.tcbStatus", module.TCBStatus, moduleStatuses); err != nil {
		return nil, err
	}
	ev.ModuleStatus = module.TCBStatus
	ev.Status = converge(ev.Status, module.TCBStatus)
	ev.addLevel(module.TCBDate, module.AdvisoryIDs)
	return ev, nil
}

// matchTDXModule compares MRSIGNERSEAM and SEAMATTRIBUTES with tdxModule.
func matchTDXModule(info *TCBInfo, td *TDReport) error {
	if info.TDXModule == nil {
		return attest.Malformed("tcbInfo.tdxModule", "missing from a TDX TCB Info", nil)
	}
	return matchSEAM("tcbInfo.tdxModule", info.TDXModule.MRSigner, info.TDXModule.Attributes, info.TDXModule.AttributesMask, td)
}

func matchSEAM(field, mrsigner, attrs, mask string, td *TDReport) error {
	wantSigner, err := decodeHexField(field+".mrsigner", mrsigner, 48)
	if err != nil {
		return err
	}
	wantAttrs, err := decodeHexField(field+".attributes", attrs, 8)
	if err != nil {
		return err
	}
	maskBytes, err := decodeHexField(field+".attributesMask", mask, 8)
	if err != nil {
		return err
	}
	if !bytes.Equal(td.MRSignerSEAM[:], wantSigner) {
		return attest.Errorf(attest.ErrChain, "MRSIGNERSEAM", "the TDX module signer does not match the TCB Info").
			WithValues(hex.EncodeToString(td.MRSignerSEAM[:]), strings.ToLower(mrsigner))
	}
	// QVL (QuoteVerifier.cpp) requires SEAMATTRIBUTES to be zero whatever
	// the mask. Intel's TDX TCB Info lists attributes 0 under mask
	// FFFFFFFFFFFFFFFF, so the mask alone gives the same result for it.
	if !allZero(td.SEAMAttributes[:]) {
		return attest.Errorf(attest.ErrChain, "SEAMATTRIBUTES", "the TDX module attributes are not zero").
			WithValues(hex.EncodeToString(td.SEAMAttributes[:]), strings.Repeat("00", 8)).
			WithFix("Intel's quote verification rejects a TDX module with SEAM attributes set; run the TD on a production TDX module")
	}
	if !maskedEqual(td.SEAMAttributes[:], maskBytes, wantAttrs) {
		return attest.Errorf(attest.ErrChain, "SEAMATTRIBUTES", "the TDX module attributes do not match the TCB Info under its mask").
			WithValues(hex.EncodeToString(td.SEAMAttributes[:]), strings.ToLower(attrs))
	}
	return nil
}

// matchModuleIdentity finds the TDX module identity of the TD report's
// module version, checks the module's signer and attributes against it and
// returns the matched level, or nil when the module is below every level.
func matchModuleIdentity(info *TCBInfo, td *TDReport) (*ISVSVNTCBLevel, error) {
	id := fmt.Sprintf("TDX_%02X", td.TEETCBSVN[1])
	for i := range info.TDXModuleIdentities {
		m := &info.TDXModuleIdentities[i]
		if !strings.EqualFold(m.ID, id) {
			continue
		}
		if err := matchSEAM("tcbInfo.tdxModuleIdentities["+m.ID+"]", m.MRSigner, m.Attributes, m.AttributesMask, td); err != nil {
			return nil, err
		}
		return matchISVSVN(m.TCBLevels, int(td.TEETCBSVN[0])), nil
	}
	return nil, attest.Errorf(attest.ErrCollateralMissing, "tcbInfo.tdxModuleIdentities", "no TDX module identity %s for the module of major version %d in TEE_TCB_SVN", id, td.TEETCBSVN[1]).
		WithFix(fetchTDXTCBInfoFix + "; older TCB Info does not list this module")
}

// fetchTDXTCBInfoFix is the fix for TDX TCB Info that cannot judge
// TEE_TCB_SVN2.
const fetchTDXTCBInfoFix = "fetch current TDX TCB Info from Intel PCS"

// converge combines a platform status with the status of the TDX module or
// the QE, as Intel's QVL does.
func converge(platform, other string) string {
	switch other {
	case attest.TCBOutOfDate:
		switch platform {
		case attest.TCBUpToDate, attest.TCBSWHardeningNeeded:
			return attest.TCBOutOfDate
		case attest.TCBConfigurationNeeded, attest.TCBConfigurationAndSWHardeningNeeded:
			return attest.TCBOutOfDateConfigurationNeeded
		}
	case attest.TCBRevoked:
		if platform != attest.TCBNoMatchingLevel {
			return attest.TCBRevoked
		}
	case attest.TCBNoMatchingLevel:
		return attest.TCBNoMatchingLevel
	}
	return platform
}

// MatchQEIdentity checks the QE report against the QE Identity: MRSIGNER,
// ISVPRODID, and MISCSELECT and ATTRIBUTES under their masks. A mismatch is
// an error, because the report then comes from another enclave than
// Intel's quoting enclave. It returns the matched level's status, reduced
// as QVL does to UpToDate, OutOfDate or Revoked, or NoMatchingTcbLevel with
// a nil level when the ISVSVN is below every level.
func MatchQEIdentity(id *EnclaveIdentity, qe *EnclaveReport) (string, *ISVSVNTCBLevel, error) {
	signer, err := decodeHexField("enclaveIdentity.mrsigner", id.MRSigner, 32)
	if err != nil {
		return "", nil, err
	}
	misc, err := decodeHexField("enclaveIdentity.miscselect", id.MiscSelect, 4)
	if err != nil {
		return "", nil, err
	}
	miscMask, err := decodeHexField("enclaveIdentity.miscselectMask", id.MiscSelectMask, 4)
	if err != nil {
		return "", nil, err
	}
	attrs, err := decodeHexField("enclaveIdentity.attributes", id.Attributes, 16)
	if err != nil {
		return "", nil, err
	}
	attrsMask, err := decodeHexField("enclaveIdentity.attributesMask", id.AttributesMask, 16)
	if err != nil {
		return "", nil, err
	}
	// QVL (EnclaveReportVerifier.cpp) reads the QE Identity's miscselect
	// and mask as the four bytes of the little-endian report field, so
	// "01000000" is MISCSELECT 1.
	qeMisc := binary.LittleEndian.AppendUint32(nil, qe.MiscSelect)

	mismatch := func(field, value, expected string) error {
		return attest.Errorf(attest.ErrChain, "QE report "+field, "the QE report does not match the QE Identity %s", id.ID).
			WithValues(value, expected).
			WithFix("the quote was not produced by Intel's quoting enclave, or the QE Identity is for another enclave")
	}
	switch {
	case !bytes.Equal(qe.MRSigner[:], signer):
		return "", nil, mismatch("MRSIGNER", hex.EncodeToString(qe.MRSigner[:]), strings.ToLower(id.MRSigner))
	case int(qe.ISVProdID) != id.ISVProdID:
		return "", nil, mismatch("ISVPRODID", fmt.Sprint(qe.ISVProdID), fmt.Sprint(id.ISVProdID))
	case !maskedEqual(qeMisc, miscMask, misc):
		return "", nil, mismatch("MISCSELECT", hex.EncodeToString(qeMisc), strings.ToLower(id.MiscSelect))
	case !maskedEqual(qe.Attributes[:], attrsMask, attrs):
		return "", nil, mismatch("ATTRIBUTES", hex.EncodeToString(qe.Attributes[:]), strings.ToLower(id.Attributes))
	}
	level := matchISVSVN(id.TCBLevels, int(qe.ISVSVN))
	if level == nil {
		return attest.TCBNoMatchingLevel, nil, nil
	}
	if err := checkStatusName("enclaveIdentity.tcbLevels.tcbStatus", level.TCBStatus, attest.IntelTCBLevelStatuses); err != nil {
		return "", nil, err
	}
	// QVL's EnclaveReportVerifier returns one of three QE statuses:
	// UpToDate, Revoked and, for every other status, OutOfDate.
	switch level.TCBStatus {
	case attest.TCBUpToDate, attest.TCBRevoked:
		return level.TCBStatus, level, nil
	}
	return attest.TCBOutOfDate, level, nil
}

// AdviseRelaunch sets e.RelaunchAdvised when relaunching the TD would clear
// its OutOfDate status, as Intel's QVL decides it. The TD report must be of
// TDX 1.5, and the QE and the platform's SGX level must not be out of date.
// The TD's status and its module's status must be OutOfDate, and the module
// running now (TEE_TCB_SVN2) must meet the latest levels. e must hold the
// QE status when the QE Identity was checked.
//
// It returns an error, as QVL fails the quote, when TEE_TCB_SVN2 names a
// module that the TCB Info does not describe, or when the latest level
// lacks the TDX components that TEE_TCB_SVN2 is compared with.
func AdviseRelaunch(info *TCBInfo, pck *PCKExtensions, td *TDReport, e *TCBEvaluation) error {
	e.RelaunchAdvised = false
	if td == nil || !td.Is15 || info.ID != "TDX" || len(info.TCBLevels) == 0 {
		return nil
	}
	switch e.QEStatus {
	case attest.TCBOutOfDate, attest.TCBRevoked, attest.TCBNoMatchingLevel:
		return nil
	}
	switch sgxLevelStatus(info, pck) {
	case attest.TCBUpToDate, attest.TCBSWHardeningNeeded,
		attest.TCBConfigurationNeeded, attest.TCBConfigurationAndSWHardeningNeeded:
	default:
		return nil
	}
	if e.ModuleStatus != attest.TCBOutOfDate ||
		(e.Status != attest.TCBOutOfDate && e.Status != attest.TCBOutOfDateConfigurationNeeded) {
		return nil
	}
	current, err := runningModuleCurrent(info, td.TEETCBSVN2)
	e.RelaunchAdvised = current
	return err
}

// sgxLevelStatus returns the status of the first TCB level whose SGX
// components and PCESVN the platform meets, ignoring the TDX components,
// or "" when it meets none.
func sgxLevelStatus(info *TCBInfo, pck *PCKExtensions) string {
	for i := range info.TCBLevels {
		l := &info.TCBLevels[i]
		if int(pck.PCESVN) >= l.TCB.PCESVN && componentsMet(pck.CompSVN[:], l.TCB.SGXComponents, 0) {
			return l.TCBStatus
		}
	}
	return ""
}

// runningModuleCurrent reports whether svn2, the TEE_TCB_SVN of the TDX
// module running now, meets the latest TCB level, which Intel lists first.
// Byte 0, the module SVN, is compared with the latest level of the module
// identity (or with TDX component 0 for major version 0), and byte 2 with
// the latest TCB level's TDX component 2.
func runningModuleCurrent(info *TCBInfo, svn2 [16]byte) (bool, error) {
	latest := info.TCBLevels[0].TCB.TDXComponents
	if len(latest) < 3 {
		return false, attest.Malformed("tcbInfo.tcbLevels[0].tcb.tdxtcbcomponents",
			fmt.Sprintf("%d components in the latest TCB level, at least 3 needed to judge TEE_TCB_SVN2", len(latest)), nil).
			WithFix(fetchTDXTCBInfoFix)
	}
	if svn2[1] == 0 {
		return int(svn2[0]) >= latest[0].SVN && int(svn2[2]) >= latest[2].SVN, nil
	}
	id := fmt.Sprintf("TDX_%02X", svn2[1])
	for _, m := range info.TDXModuleIdentities {
		if !strings.EqualFold(m.ID, id) {
			continue
		}
		if len(m.TCBLevels) == 0 {
			return false, attest.Malformed("tcbInfo.tdxModuleIdentities["+m.ID+"].tcbLevels", "no levels to judge TEE_TCB_SVN2 by", nil).
				WithFix(fetchTDXTCBInfoFix)
		}
		return int(svn2[0]) >= m.TCBLevels[0].TCB.ISVSVN && int(svn2[2]) >= latest[2].SVN, nil
	}
	return false, attest.Errorf(attest.ErrCollateralMissing, "tcbInfo.tdxModuleIdentities",
		"no TDX module identity %s for the running module of major version %d in TEE_TCB_SVN2", id, svn2[1]).
		WithFix("fetch current TDX TCB Info from Intel PCS; older TCB Info does not list this module")
}
