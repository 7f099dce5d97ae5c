package dcap

import (
	"encoding/binary"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// Report body sizes: the SGX enclave report (REPORT_BODY of the SGX SDK),
// the TDX 1.0 TD report body and the TDX 1.5 body, which appends
// TEE_TCB_SVN2 and MRSERVICETD.
const (
	enclaveReportSize = 384
	tdReport10Size    = 584
	tdReport15Size    = 648
)

// EnclaveReport is an SGX enclave report body: the application enclave of
// an SGX quote, or the quoting enclave of any quote.
type EnclaveReport struct {
	CPUSVN       [16]byte
	MiscSelect   uint32
	ISVExtProdID [16]byte
	Attributes   [16]byte
	MREnclave    [32]byte
	MRSigner     [32]byte
	ConfigID     [64]byte
	ISVProdID    uint16
	ISVSVN       uint16
	ConfigSVN    uint16
	ISVFamilyID  [16]byte
	ReportData   [64]byte
}

// Debug reports ATTRIBUTES.DEBUG (bit 1 of the flags).
func (e *EnclaveReport) Debug() bool { return e.Attributes[0]&0x02 != 0 }

// ParseEnclaveReport parses a 384-byte SGX report body.
func ParseEnclaveReport(b []byte) (*EnclaveReport, error) {
	if len(b) != enclaveReportSize {
		return nil, attest.Malformed("enclave report", fmt.Sprintf("%d bytes, expected %d", len(b), enclaveReportSize), nil)
	}
	e := &EnclaveReport{}
	copy(e.CPUSVN[:], b[0:16])
	e.MiscSelect = binary.LittleEndian.Uint32(b[16:20])
	copy(e.ISVExtProdID[:], b[32:48])
	copy(e.Attributes[:], b[48:64])
	copy(e.MREnclave[:], b[64:96])
	copy(e.MRSigner[:], b[128:160])
	copy(e.ConfigID[:], b[192:256])
	e.ISVProdID = binary.LittleEndian.Uint16(b[256:258])
	e.ISVSVN = binary.LittleEndian.Uint16(b[258:260])
	e.ConfigSVN = binary.LittleEndian.Uint16(b[260:262])
	copy(e.ISVFamilyID[:], b[304:320])
	copy(e.ReportData[:], b[320:384])
	return e, nil
}

// TDReport is a TD report body of TDX 1.0 or, when Is15 is true, TDX 1.5.
type TDReport struct {
	TEETCBSVN      [16]byte
	MRSEAM         [48]byte
	MRSignerSEAM   [48]byte
	SEAMAttributes [8]byte
	TDAttributes   [8]byte
	XFAM           [8]byte
	MRTD           [48]byte
	MRConfigID     [48]byte
	MROwner        [48]byte
	MROwnerConfig  [48]byte
	RTMR           [4][48]byte
	ReportData     [64]byte

	Is15        bool
	TEETCBSVN2  [16]byte
	MRServiceTD [48]byte
}

// Debug reports TD_ATTRIBUTES.DEBUG (bit 0).
func (t *TDReport) Debug() bool { return t.TDAttributes[0]&0x01 != 0 }

// ParseTDReport parses a 584-byte (TDX 1.0) or 648-byte (TDX 1.5) TD report
// body.
func ParseTDReport(b []byte) (*TDReport, error) {
	if len(b) != tdReport10Size && len(b) != tdReport15Size {
		return nil, attest.Malformed("TD report", fmt.Sprintf("%d bytes, expected %d or %d", len(b), tdReport10Size, tdReport15Size), nil)
	}
	t := &TDReport{}
	copy(t.TEETCBSVN[:], b[0:16])
	copy(t.MRSEAM[:], b[16:64])
	copy(t.MRSignerSEAM[:], b[64:112])
	copy(t.SEAMAttributes[:], b[112:120])
	copy(t.TDAttributes[:], b[120:128])
	copy(t.XFAM[:], b[128:136])
	copy(t.MRTD[:], b[136:184])
	copy(t.MRConfigID[:], b[184:232])
	copy(t.MROwner[:], b[232:280])
	copy(t.MROwnerConfig[:], b[280:328])
	for i := range t.RTMR {
		copy(t.RTMR[i][:], b[328+48*i:376+48*i])
	}
	copy(t.ReportData[:], b[520:584])
	if len(b) == tdReport15Size {
		t.Is15 = true
		copy(t.TEETCBSVN2[:], b[584:600])
		copy(t.MRServiceTD[:], b[600:648])
	}
	return t, nil
}
