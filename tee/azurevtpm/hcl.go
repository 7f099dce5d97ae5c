package azurevtpm

import (
	"crypto"
	"encoding/binary"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// Offsets and sizes of the HCL report.
const (
	hclHeaderSize       = 32
	hardwareReportSize  = 1184
	requestHeaderOffset = hclHeaderSize + hardwareReportSize
	requestHeaderSize   = 20
	variableDataOffset  = requestHeaderOffset + requestHeaderSize
	// snpReportSize is the size of an SEV-SNP ATTESTATION_REPORT, and
	// tdReportSize that of a TDREPORT_STRUCT.
	snpReportSize = 1184
	tdReportSize  = 1024
	// tdReportDataOffset is REPORTDATA inside TDREPORT_STRUCT, after the
	// REPORTMACSTRUCT fields REPORTTYPE, reserved, CPUSVN,
	// TEE_TCB_INFO_HASH and TEE_INFO_HASH.
	tdReportDataOffset = 128
)

// Header and request versions with this layout. Microsoft's OpenHCL
// attestation protocol defines header versions 1 and 2 and request version
// 1. The header is not signed, so an unknown version is rejected rather
// than read with a layout it may not have.
const (
	hclVersionMin  = 1
	hclVersionMax  = 2
	requestVersion = 1
)

// Report types of the IGVM attestation request.
const (
	ReportTypeSNP uint32 = 2
	ReportTypeTDX uint32 = 4
)

// HCLReport is a decoded HCL attestation report. Nothing in it is
// verified.
type HCLReport struct {
	Version     uint32
	ReportSize  uint32
	RequestType uint32
	Status      uint32
	// ReportType is ReportTypeSNP or ReportTypeTDX.
	ReportType uint32
	// HardwareReport is the SEV-SNP report (1184 bytes) or the TDREPORT
	// (1024 bytes).
	HardwareReport []byte
	// Hash is the algorithm whose digest of VariableData the hardware
	// report data starts with.
	Hash crypto.Hash
	// VariableData is the runtime data: a JSON document with the vTPM keys
	// (HCLAkPub, HCLEkPub), the VM configuration and user data.
	VariableData []byte
}

// ParseHCLReport decodes an HCL report.
func ParseHCLReport(b []byte) (*HCLReport, error) {
	if len(b) < variableDataOffset {
		return nil, attest.Malformed("hcl_report", fmt.Sprintf("%d bytes is shorter than the %d bytes of the header, hardware report and request header", len(b), variableDataOffset), nil)
	}
	if string(b[:4]) != "HCLA" {
		return nil, attest.Malformed("hcl_report.signature", "the report does not start with \"HCLA\"", nil).
			WithValues(fmt.Sprintf("%q", b[:4]), "\"HCLA\"")
	}
	le := binary.LittleEndian
	r := &HCLReport{
		Version:     le.Uint32(b[4:]),
		ReportSize:  le.Uint32(b[8:]),
		RequestType: le.Uint32(b[12:]),
		Status:      le.Uint32(b[16:]),
	}
	if r.Version < hclVersionMin || r.Version > hclVersionMax {
		return nil, attest.Errorf(attest.ErrUnsupported, "hcl_report.version", "HCL report version %d is not supported; versions %d and %d are", r.Version, hclVersionMin, hclVersionMax).
			WithFix("send the HCL report unmodified, as the paravisor produced it")
	}
	req := b[requestHeaderOffset:]
	dataSize := le.Uint32(req[0:])
	if v := le.Uint32(req[4:]); v != requestVersion {
		return nil, attest.Errorf(attest.ErrUnsupported, "hcl_report.request_version", "request data version %d is not supported; version %d is", v, requestVersion).
			WithFix("send the HCL report unmodified, as the paravisor produced it")
	}
	r.ReportType = le.Uint32(req[8:])
	hashType := le.Uint32(req[12:])
	varSize := le.Uint32(req[16:])

	if uint64(varSize) > uint64(len(b)-variableDataOffset) {
		return nil, attest.Malformed("hcl_report.variable_data_size", fmt.Sprintf("%d bytes of runtime data do not fit in the %d bytes after the request header", varSize, len(b)-variableDataOffset), nil)
	}
	if uint64(dataSize) != uint64(varSize)+requestHeaderSize {
		return nil, attest.Malformed("hcl_report.data_size", fmt.Sprintf("request data size %d is not the %d-byte header plus %d bytes of runtime data", dataSize, requestHeaderSize, varSize), nil)
	}
	if want := uint64(variableDataOffset) + uint64(varSize); uint64(r.ReportSize) != want {
		return nil, attest.Malformed("hcl_report.report_size", fmt.Sprintf("report size %d is not the %d bytes of the header, hardware report, request header and %d bytes of runtime data", r.ReportSize, want, varSize), nil)
	}
	r.VariableData = b[variableDataOffset : variableDataOffset+int(varSize)]

	switch hashType {
	case 1:
		r.Hash = crypto.SHA256
	case 2:
		r.Hash = crypto.SHA384
	case 3:
		r.Hash = crypto.SHA512
	default:
		return nil, attest.Errorf(attest.ErrUnsupported, "hcl_report.report_data_hash_type", "hash type %d is not SHA-256 (1), SHA-384 (2) or SHA-512 (3)", hashType)
	}

	switch r.ReportType {
	case ReportTypeSNP:
		r.HardwareReport = b[hclHeaderSize : hclHeaderSize+snpReportSize]
	case ReportTypeTDX:
		r.HardwareReport = b[hclHeaderSize : hclHeaderSize+tdReportSize]
	default:
		return nil, attest.Errorf(attest.ErrUnsupported, "hcl_report.report_type", "report type %d is neither SEV-SNP (2) nor TDX (4)", r.ReportType).
			WithFix("verify evidence of an SEV-SNP or TDX confidential VM")
	}
	return r, nil
}

// tdReportData returns REPORTDATA of the TDREPORT in a TDX HCL report.
func (r *HCLReport) tdReportData() []byte {
	return r.HardwareReport[tdReportDataOffset : tdReportDataOffset+64]
}
