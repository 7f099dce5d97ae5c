package dcap

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/pcsdoc"
)

// TCBInfo is the tcbInfo object of an Intel PCS TCB Info document: version
// 3, which PCS serves for SGX and TDX since API v4, or version 2 for SGX
// (API v3).
type TCBInfo struct {
	ID                      string              `json:"id"`
	Version                 int                 `json:"version"`
	IssueDate               time.Time           `json:"issueDate"`
	NextUpdate              time.Time           `json:"nextUpdate"`
	FMSPC                   string              `json:"fmspc"`
	PCEID                   string              `json:"pceId"`
	TCBType                 int                 `json:"tcbType"`
	TCBEvaluationDataNumber int                 `json:"tcbEvaluationDataNumber"`
	TDXModule               *TDXModule          `json:"tdxModule,omitempty"`
	TDXModuleIdentities     []TDXModuleIdentity `json:"tdxModuleIdentities,omitempty"`
	TCBLevels               []TCBLevel          `json:"tcbLevels"`
}

// TDXModule is the expected signer and attributes of the TDX module.
type TDXModule struct {
	MRSigner       string `json:"mrsigner"`
	Attributes     string `json:"attributes"`
	AttributesMask string `json:"attributesMask"`
}

// TDXModuleIdentity lists the TCB levels of one TDX module major version,
// named "TDX_" and the version in two hexadecimal digits.
type TDXModuleIdentity struct {
	ID             string           `json:"id"`
	MRSigner       string           `json:"mrsigner"`
	Attributes     string           `json:"attributes"`
	AttributesMask string           `json:"attributesMask"`
	TCBLevels      []ISVSVNTCBLevel `json:"tcbLevels"`
}

// TCBLevel is one platform TCB level.
type TCBLevel struct {
	TCB         LevelTCB  `json:"tcb"`
	TCBDate     time.Time `json:"tcbDate"`
	TCBStatus   string    `json:"tcbStatus"`
	AdvisoryIDs []string  `json:"advisoryIDs,omitempty"`
}

// LevelTCB is the tcb object of a platform TCB level: 16 SGX component
// SVNs, the PCESVN and, for TDX, 16 TDX component SVNs.
type LevelTCB struct {
	SGXComponents []TCBComponent `json:"sgxtcbcomponents"`
	PCESVN        int            `json:"pcesvn"`
	TDXComponents []TCBComponent `json:"tdxtcbcomponents,omitempty"`
}

// UnmarshalJSON decodes the version 3 form (component arrays) and the
// version 2 form, which names each SGX component sgxtcbcomp01svn to
// sgxtcbcomp16svn.
func (t *LevelTCB) UnmarshalJSON(data []byte) error {
	type v3 LevelTCB
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	if _, ok := fields["sgxtcbcomponents"]; ok {
		return json.Unmarshal(data, (*v3)(t))
	}
	var v2 struct {
		PCESVN int `json:"pcesvn"`
	}
	if err := json.Unmarshal(data, &v2); err != nil {
		return err
	}
	*t = LevelTCB{PCESVN: v2.PCESVN}
	for i := 1; i <= 16; i++ {
		raw, ok := fields[fmt.Sprintf("sgxtcbcomp%02dsvn", i)]
		if !ok {
			return fmt.Errorf("tcb: sgxtcbcomp%02dsvn is missing", i)
		}
		var svn int
		if err := json.Unmarshal(raw, &svn); err != nil {
			return fmt.Errorf("tcb: sgxtcbcomp%02dsvn: %w", i, err)
		}
		t.SGXComponents = append(t.SGXComponents, TCBComponent{SVN: svn})
	}
	return nil
}

// TCBComponent is one SVN of a TCB level.
type TCBComponent struct {
	SVN      int    `json:"svn"`
	Category string `json:"category,omitempty"`
	Type     string `json:"type,omitempty"`
}

// ISVSVNTCBLevel is a TCB level keyed by an ISV SVN, as used by the QE
// Identity and by TDX module identities.
type ISVSVNTCBLevel struct {
	TCB struct {
		ISVSVN int `json:"isvsvn"`
	} `json:"tcb"`
	TCBDate     time.Time `json:"tcbDate"`
	TCBStatus   string    `json:"tcbStatus"`
	AdvisoryIDs []string  `json:"advisoryIDs,omitempty"`
}

// EnclaveIdentity is the enclaveIdentity object of an Intel PCS QE
// Identity or TD QE Identity document, version 2.
type EnclaveIdentity struct {
	ID                      string           `json:"id"`
	Version                 int              `json:"version"`
	IssueDate               time.Time        `json:"issueDate"`
	NextUpdate              time.Time        `json:"nextUpdate"`
	TCBEvaluationDataNumber int              `json:"tcbEvaluationDataNumber"`
	MiscSelect              string           `json:"miscselect"`
	MiscSelectMask          string           `json:"miscselectMask"`
	Attributes              string           `json:"attributes"`
	AttributesMask          string           `json:"attributesMask"`
	MRSigner                string           `json:"mrsigner"`
	ISVProdID               int              `json:"isvprodid"`
	TCBLevels               []ISVSVNTCBLevel `json:"tcbLevels"`
}

// splitSigned reads the signed object named by one of members and the
// signature of an Intel PCS body, reporting errors at docName.
func splitSigned(raw []byte, docName string, members ...string) (*pcsdoc.Document, error) {
	doc, err := pcsdoc.Split(raw, members...)
	if err == nil {
		return doc, nil
	}
	field := docName
	var splitErr *pcsdoc.Error
	if !errors.As(err, &splitErr) {
		return nil, attest.Malformed(field, "invalid signed document", err)
	}
	if splitErr.Member != "" {
		field += "." + splitErr.Member
	}
	return nil, attest.Malformed(field, splitErr.Reason, splitErr.Err)
}

// ParseTCBInfo parses an Intel PCS TCB Info body and returns the TCB Info
// with the signed bytes and signature.
func ParseTCBInfo(raw []byte) (*TCBInfo, *pcsdoc.Document, error) {
	doc, err := splitSigned(raw, "tcbInfo", "tcbInfo")
	if err != nil {
		return nil, nil, err
	}
	info := &TCBInfo{}
	if err := json.Unmarshal(doc.Body, info); err != nil {
		return nil, nil, attest.Malformed("tcbInfo", "invalid TCB Info", err)
	}
	switch {
	case info.Version == 3:
	case info.Version == 2 && (info.ID == "" || info.ID == "SGX"):
		// Version 2 (Intel PCS API v3) exists for SGX only and has no id.
		info.ID = "SGX"
	default:
		return nil, nil, attest.Errorf(attest.ErrUnsupported, "tcbInfo.version", "TCB Info version %d is not supported", info.Version).
			WithFix("fetch TCB Info version 3 (Intel PCS API v4)")
	}
	// A field missing from the JSON would read as zero, which is a valid
	// value of both, so presence is checked on the raw object. QVL
	// (TcbInfo.cpp) likewise rejects TCB Info of version 2 or 3 without
	// tcbType or tcbEvaluationDataNumber.
	if err := requireFields("tcbInfo", "TCB Info", doc.Body, "tcbType", "tcbEvaluationDataNumber"); err != nil {
		return nil, nil, err
	}
	if err := checkEvaluationDataNumber("tcbInfo", "TCB Info", info.TCBEvaluationDataNumber); err != nil {
		return nil, nil, err
	}
	// QVL (TcbInfo.cpp) rejects every TCB type but 0, whose levels compare
	// the 16 SGX components one by one, as matchPlatformLevel does.
	if info.TCBType != 0 {
		return nil, nil, attest.Errorf(attest.ErrUnsupported, "tcbInfo.tcbType", "TCB type %d is not supported, only type 0", info.TCBType).
			WithFix("fetch the TCB Info again from Intel PCS, which serves TCB type 0")
	}
	for i, l := range info.TCBLevels {
		if len(l.TCB.SGXComponents) != 16 {
			return nil, nil, attest.Malformed("tcbInfo.tcbLevels", fmt.Sprintf("level %d has %d SGX components, expected 16", i, len(l.TCB.SGXComponents)), nil)
		}
		if info.ID == "TDX" && len(l.TCB.TDXComponents) != 16 {
			return nil, nil, attest.Malformed("tcbInfo.tcbLevels", fmt.Sprintf("level %d has %d TDX components, expected 16", i, len(l.TCB.TDXComponents)), nil)
		}
	}
	if err := sortLevels(info); err != nil {
		return nil, nil, err
	}
	return info, doc, nil
}

// sortLevels orders info.TCBLevels as QVL does before matching: descending
// by compareLevels. QVL keeps them in a set, so it rejects two levels that
// compare equal, and so does sortLevels.
func sortLevels(info *TCBInfo) error {
	slices.SortStableFunc(info.TCBLevels, func(a, b TCBLevel) int { return compareLevels(info.ID, &b, &a) })
	for i := 1; i < len(info.TCBLevels); i++ {
		if compareLevels(info.ID, &info.TCBLevels[i-1], &info.TCBLevels[i]) == 0 {
			return attest.Malformed("tcbInfo.tcbLevels", fmt.Sprintf("two levels have the same TCB (PCESVN %d), statuses %s and %s",
				info.TCBLevels[i].TCB.PCESVN, info.TCBLevels[i-1].TCBStatus, info.TCBLevels[i].TCBStatus), nil).
				WithFix("fetch the TCB Info again from Intel PCS")
		}
	}
	return nil
}

// compareLevels orders two TCB levels as QVL's TcbLevel::operator> does
// (TcbLevel.cpp): by the SGX component SVNs lexicographically, then by
// PCESVN, and in TDX TCB Info with equal PCESVNs by the TDX component SVNs.
func compareLevels(id string, a, b *TCBLevel) int {
	if c := compareSVNs(a.TCB.SGXComponents, b.TCB.SGXComponents); c != 0 {
		return c
	}
	if id == "TDX" && a.TCB.PCESVN == b.TCB.PCESVN {
		return compareSVNs(a.TCB.TDXComponents, b.TCB.TDXComponents)
	}
	return cmp.Compare(a.TCB.PCESVN, b.TCB.PCESVN)
}

func compareSVNs(a, b []TCBComponent) int {
	return slices.CompareFunc(a, b, func(x, y TCBComponent) int { return cmp.Compare(x.SVN, y.SVN) })
}

// requireFields fails when the signed JSON object body lacks one of
// fields or sets it to null. docName prefixes the field in the error, and
// title names the document in its fix.
func requireFields(docName, title string, body []byte, fields ...string) error {
	var object map[string]json.RawMessage
	if err := json.Unmarshal(body, &object); err != nil {
		return attest.Malformed(docName, "not a JSON object", err)
	}
	for _, name := range fields {
		if raw, ok := object[name]; !ok || string(raw) == "null" {
			err := attest.Malformed(docName+"."+name, fmt.Sprintf("missing: Intel's %s schema requires %s", title, name), nil)
			return err.WithFix(fmt.Sprintf("fetch the %s again from Intel PCS or your PCCS; the file was altered or comes from another service", title))
		}
	}
	return nil
}

// checkEvaluationDataNumber requires n to fit the unsigned 32-bit integer
// that QVL reads tcbEvaluationDataNumber as.
func checkEvaluationDataNumber(docName, title string, n int) error {
	if n < 0 || n > math.MaxUint32 {
		return attest.Malformed(docName+".tcbEvaluationDataNumber", fmt.Sprintf("%d is not an unsigned 32-bit integer", n), nil).
			WithFix(fmt.Sprintf("fetch the %s again from Intel PCS or your PCCS; the file was altered or comes from another service", title))
	}
	return nil
}

// ParseEnclaveIdentity parses an Intel PCS QE Identity body.
func ParseEnclaveIdentity(raw []byte) (*EnclaveIdentity, *pcsdoc.Document, error) {
	doc, err := splitSigned(raw, "enclaveIdentity", "enclaveIdentity", "qeIdentity")
	if err != nil {
		return nil, nil, err
	}
	id := &EnclaveIdentity{}
	if err := json.Unmarshal(doc.Body, id); err != nil {
		return nil, nil, attest.Malformed("enclaveIdentity", "invalid QE Identity", err)
	}
	if id.Version != 2 {
		return nil, nil, attest.Errorf(attest.ErrUnsupported, "enclaveIdentity.version", "QE Identity version %d is not supported", id.Version).
			WithFix("fetch QE Identity version 2 (Intel PCS API v3 or v4)")
	}
	// QVL (EnclaveIdentityV2.cpp) rejects a QE Identity without
	// tcbEvaluationDataNumber.
	if err := requireFields("enclaveIdentity", "QE Identity", doc.Body, "tcbEvaluationDataNumber"); err != nil {
		return nil, nil, err
	}
	if err := checkEvaluationDataNumber("enclaveIdentity", "QE Identity", id.TCBEvaluationDataNumber); err != nil {
		return nil, nil, err
	}
	return id, doc, nil
}

// decodeHexField decodes a hexadecimal collateral field of the given size,
// in either case.
func decodeHexField(field, s string, size int) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != size {
		return nil, attest.Malformed(field, fmt.Sprintf("%q is not %d bytes of hexadecimal", s, size), err)
	}
	return b, nil
}

// maskedEqual reports whether value AND mask equals want.
func maskedEqual(value, mask, want []byte) bool {
	if len(value) != len(mask) || len(mask) != len(want) {
		return false
	}
	masked := make([]byte, len(value))
	for i := range value {
		masked[i] = value[i] & mask[i]
	}
	return bytes.Equal(masked, want)
}
