package snp

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/snpabi"
)

// ReportSize is the size of an ATTESTATION_REPORT in bytes (0x4A0) for every
// report version this package parses.
const ReportSize = 0x4A0

// signedSize is the number of leading report bytes that SIGNATURE covers.
const signedSize = 0x2A0

// sigAlgoECDSAP384SHA384 is the SIGNATURE_ALGO value of ECDSA P-384 with
// SHA-384, the only algorithm SEV-SNP firmware uses.
const sigAlgoECDSAP384SHA384 = 1

// Report versions with a known layout (SEV Secure Nested Paging Firmware ABI
// Specification, AMD publication 56860, Table "ATTESTATION_REPORT
// Structure"). Version 3 adds CPUID_FAM_ID, CPUID_MOD_ID and CPUID_STEP at
// 0x188. Version 5 adds LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR at 0x1F8.
// Version 4 has the layout of version 3: virtee/sev, the Rust library of
// Trustee's SEV-SNP verifier, maps both versions to one layout (as of April
// 2026). go-sev-guest v0.15.0 accepts version 4 too, but it reads the
// mitigation vectors of every version, so it accepts bytes at 0x1F8 that
// Cloister requires to be zero below version 5.
// NOTE: the version 4 layout rests on virtee/sev, because no revision of
// publication 56860 that defines version 4 was available here.
const (
	reportVersion2 = 2
	reportVersion3 = 3
	reportVersion4 = 4
	reportVersion5 = 5
)

// Signing key values of the SIGNING_KEY field (bits 4:2 at 0x48).
const (
	signingKeyVCEK = 0
	signingKeyVLEK = 1
	signingKeyNone = 7
)

// policyDebugBit is the DEBUG bit of the guest policy: when set, the
// hypervisor may decrypt the guest's memory with SNP_DBG_DECRYPT.
const policyDebugBit = 19

// The GUEST_POLICY structure reserves bit 17, which must be one, and bits
// 63:26, which must be zero. Bit 25 (PAGE_SWAP_DISABLE) is the highest
// defined bit. go-sev-guest v0.15.0 also rejects reports that break either
// rule.
const (
	policyReservedOneBit = 17
	policyDefinedBits    = 26
)

// Report is a parsed ATTESTATION_REPORT. Field names follow the ABI
// specification. Fields that a version does not define stay zero, and
// HasCPUID and HasMitigationVectors are true when the version has them.
type Report struct {
	Version       uint32
	GuestSVN      uint32
	Policy        uint64
	FamilyID      [16]byte
	ImageID       [16]byte
	VMPL          uint32
	SignatureAlgo uint32
	CurrentTCB    uint64
	PlatformInfo  uint64
	// SignerInfo is the raw 32-bit field at 0x48: AUTHOR_KEY_EN (bit 0),
	// MASK_CHIP_KEY (bit 1) and SIGNING_KEY (bits 4:2).
	SignerInfo      uint32
	ReportData      [64]byte
	Measurement     [48]byte
	HostData        [32]byte
	IDKeyDigest     [48]byte
	AuthorKeyDigest [48]byte
	ReportID        [32]byte
	ReportIDMA      [32]byte
	ReportedTCB     uint64
	// CPUIDFamily, CPUIDModel and CPUIDStepping exist from version 3.
	HasCPUID      bool
	CPUIDFamily   uint8
	CPUIDModel    uint8
	CPUIDStepping uint8
	ChipID        [snpabi.ChipIDSize]byte
	CommittedTCB  uint64
	// CurrentBuild, CurrentMinor and CurrentMajor give the running
	// firmware version; the Committed ones the committed version.
	CurrentBuild, CurrentMinor, CurrentMajor       uint8
	CommittedBuild, CommittedMinor, CommittedMajor uint8
	LaunchTCB                                      uint64
	// LaunchMitVector and CurrentMitVector exist from version 5.
	HasMitigationVectors bool
	LaunchMitVector      uint64
	CurrentMitVector     uint64
	// SignatureR and SignatureS are the ECDSA signature components,
	// converted from the report's little-endian form to big-endian.
	SignatureR [72]byte
	SignatureS [72]byte

	// raw is the whole report as parsed, for signature verification.
	raw []byte
}

// SigningKey returns the SIGNING_KEY field.
func (r *Report) SigningKey() uint32 { return (r.SignerInfo >> 2) & 7 }

// MaskChipKey returns the MASK_CHIP_KEY bit: the platform does not use the
// VCEK for attestation, so a VLEK signs the report or nothing does. The
// platform's separate MASK_CHIP_ID setting, which zeroes CHIP_ID, has no
// bit in the report.
func (r *Report) MaskChipKey() bool { return r.SignerInfo&2 != 0 }

// ChipIDMasked reports whether CHIP_ID is all zeros, as a platform
// configured with MASK_CHIP_ID writes it.
func (r *Report) ChipIDMasked() bool { return r.ChipID == [snpabi.ChipIDSize]byte{} }

// AuthorKeyEnabled returns the AUTHOR_KEY_EN bit.
func (r *Report) AuthorKeyEnabled() bool { return r.SignerInfo&1 != 0 }

// PolicyABI returns the guest policy's ABI_MAJOR (bits 15:8) and ABI_MINOR
// (bits 7:0): the lowest firmware ABI version the guest may run on.
func (r *Report) PolicyABI() (major, minor uint8) {
	return uint8(r.Policy >> 8), uint8(r.Policy)
}

// Debug returns the guest policy's DEBUG bit.
func (r *Report) Debug() bool { return r.Policy&(1<<policyDebugBit) != 0 }

// SignedBytes returns the bytes that SIGNATURE covers (0x000 to 0x29F).
func (r *Report) SignedBytes() []byte { return r.raw[:signedSize] }

// Raw returns the report bytes as parsed.
func (r *Report) Raw() []byte { return r.raw }

// SigningKeyName returns "VCEK", "VLEK" or "none" for the SIGNING_KEY field.
func (r *Report) SigningKeyName() string { return signingKeyName(r.SigningKey()) }

func signingKeyName(k uint32) string {
	switch k {
	case signingKeyVCEK:
		return "VCEK"
	case signingKeyVLEK:
		return "VLEK"
	case signingKeyNone:
		return "none"
	}
	return fmt.Sprintf("reserved value %d", k)
}

// reportVersion returns the VERSION field, or false when data is too short to
// hold one.
func reportVersion(data []byte) (uint32, bool) {
	if len(data) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(data), true
}

// ParseReport parses an ATTESTATION_REPORT of version 2 to 5. It checks
// the size, the version, the signature algorithm and that every reserved
// field of that version's layout is zero, and verifies nothing. Bytes after
// the report (such as a certificate table) are an error: pass the report
// alone.
func ParseReport(data []byte) (*Report, error) {
	if len(data) != ReportSize {
		return nil, attest.Malformed("ATTESTATION_REPORT", fmt.Sprintf("report is %d bytes, expected %d", len(data), ReportSize), nil)
	}
	version, _ := reportVersion(data)
	switch version {
	case reportVersion2, reportVersion3, reportVersion4, reportVersion5:
	default:
		return nil, attest.Errorf(attest.ErrUnsupported, "VERSION", "report version %d is not supported; versions 2 to 5 are", version).
			WithFix("pass an ATTESTATION_REPORT from SEV-SNP firmware of a released version")
	}

	le := binary.LittleEndian
	r := &Report{raw: bytes.Clone(data)}
	r.Version = version
	r.GuestSVN = le.Uint32(data[0x04:])
	r.Policy = le.Uint64(data[0x08:])
	copy(r.FamilyID[:], data[0x10:0x20])
	copy(r.ImageID[:], data[0x20:0x30])
	r.VMPL = le.Uint32(data[0x30:])
	r.SignatureAlgo = le.Uint32(data[0x34:])
	r.CurrentTCB = le.Uint64(data[0x38:])
	r.PlatformInfo = le.Uint64(data[0x40:])
	r.SignerInfo = le.Uint32(data[0x48:])
	copy(r.ReportData[:], data[0x50:0x90])
	copy(r.Measurement[:], data[0x90:0xC0])
	copy(r.HostData[:], data[0xC0:0xE0])
	copy(r.IDKeyDigest[:], data[0xE0:0x110])
	copy(r.AuthorKeyDigest[:], data[0x110:0x140])
	copy(r.ReportID[:], data[0x140:0x160])
	copy(r.ReportIDMA[:], data[0x160:0x180])
	r.ReportedTCB = le.Uint64(data[0x180:])
	reservedFrom := 0x188
	if version >= reportVersion3 {
		r.HasCPUID = true
		r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping = data[0x188], data[0x189], data[0x18A]
		reservedFrom = 0x18B
	}
	copy(r.ChipID[:], data[0x1A0:0x1E0])
	r.CommittedTCB = le.Uint64(data[0x1E0:])
	r.CurrentBuild, r.CurrentMinor, r.CurrentMajor = data[0x1E8], data[0x1E9], data[0x1EA]
	r.CommittedBuild, r.CommittedMinor, r.CommittedMajor = data[0x1EC], data[0x1ED], data[0x1EE]
	r.LaunchTCB = le.Uint64(data[0x1F0:])
	tailFrom := 0x1F8
	if version >= reportVersion5 {
		r.HasMitigationVectors = true
		r.LaunchMitVector = le.Uint64(data[0x1F8:])
		r.CurrentMitVector = le.Uint64(data[0x200:])
		tailFrom = 0x208
	}
	copy(r.SignatureR[:], reversed(data[0x2A0:0x2E8]))
	copy(r.SignatureS[:], reversed(data[0x2E8:0x330]))

	if err := r.checkReserved(data, reservedFrom, tailFrom); err != nil {
		return nil, err
	}
	if r.SignatureAlgo != sigAlgoECDSAP384SHA384 {
		return nil, attest.Errorf(attest.ErrUnsupported, "SIGNATURE_ALGO", "signature algorithm %d is not supported; only 1 (ECDSA P-384 with SHA-384) is", r.SignatureAlgo).
			WithFix("pass a report signed by SEV-SNP firmware")
	}
	if k := r.SigningKey(); k != signingKeyVCEK && k != signingKeyVLEK && k != signingKeyNone {
		return nil, attest.Malformed("SIGNING_KEY", fmt.Sprintf("SIGNING_KEY has the %s", signingKeyName(k)), nil)
	}
	return r, nil
}

// checkReserved requires every reserved range of the version's layout to be
// zero, because firmware writes zeros there and a non-zero byte means the
// bytes are not a report of that version.
func (r *Report) checkReserved(data []byte, cpuidEnd, tailFrom int) error {
	ranges := []struct {
		field    string
		from, to int
	}{
		{"reserved 0x4C", 0x4C, 0x50},
		{"reserved after REPORTED_TCB", cpuidEnd, 0x1A0},
		{"reserved 0x1EB", 0x1EB, 0x1EC},
		{"reserved 0x1EF", 0x1EF, 0x1F0},
		{"reserved before SIGNATURE", tailFrom, signedSize},
		{"SIGNATURE reserved tail", 0x330, ReportSize},
	}
	if r.Policy&(1<<policyReservedOneBit) == 0 {
		return attest.Errorf(attest.ErrMalformed, "POLICY", "reserved bit 17 of the guest policy is 0, but SEV-SNP firmware launches guests only with it set (policy 0x%x)", r.Policy).
			WithFix("pass the report unmodified as the firmware produced it")
	}
	if r.Policy>>policyDefinedBits != 0 {
		return attest.Errorf(attest.ErrMalformed, "POLICY", "reserved bits 63:26 of the guest policy are not zero (policy 0x%x), and this verifier checks only the policy bits up to 25 (PAGE_SWAP_DISABLE)", r.Policy).
			WithFix("pass the report unmodified; if a newer SEV-SNP firmware defines these bits, update Cloister so that it can judge them")
	}
	if r.SignerInfo>>5 != 0 {
		return attest.Malformed("SIGNER_INFO", fmt.Sprintf("reserved bits 31:5 are not zero (value 0x%08x)", r.SignerInfo), nil)
	}
	for _, rg := range ranges {
		for i := rg.from; i < rg.to; i++ {
			if data[i] != 0 {
				return attest.Malformed(rg.field, fmt.Sprintf("byte 0x%03x is 0x%02x in a field that must be zero in a version %d report", i, data[i], r.Version), nil)
			}
		}
	}
	return nil
}

// marshal encodes r in the layout of r.Version, with the signature
// components converted back to little-endian.
func (r *Report) marshal() []byte {
	le := binary.LittleEndian
	data := make([]byte, ReportSize)
	le.PutUint32(data[0x00:], r.Version)
	le.PutUint32(data[0x04:], r.GuestSVN)
	le.PutUint64(data[0x08:], r.Policy)
	copy(data[0x10:], r.FamilyID[:])
	copy(data[0x20:], r.ImageID[:])
	le.PutUint32(data[0x30:], r.VMPL)
	le.PutUint32(data[0x34:], r.SignatureAlgo)
	le.PutUint64(data[0x38:], r.CurrentTCB)
	le.PutUint64(data[0x40:], r.PlatformInfo)
	le.PutUint32(data[0x48:], r.SignerInfo)

	copy(data[0x50:], r.ReportData[:])
	copy(data[0x90:], r.Measurement[:])
	copy(data[0xC0:], r.HostData[:])
	copy(data[0xE0:], r.IDKeyDigest[:])
	copy(data[0x110:], r.AuthorKeyDigest[:])
	copy(data[0x140:], r.ReportID[:])
	copy(data[0x160:], r.ReportIDMA[:])
	le.PutUint64(data[0x180:], r.ReportedTCB)

	if r.Version >= reportVersion3 {
		data[0x188], data[0x189], data[0x18A] = r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping
	}
	copy(data[0x1A0:], r.ChipID[:])
	le.PutUint64(data[0x1E0:], r.CommittedTCB)
	data[0x1E8], data[0x1E9], data[0x1EA] = r.CurrentBuild, r.CurrentMinor, r.CurrentMajor
	data[0x1EC], data[0x1ED], data[0x1EE] = r.CommittedBuild, r.CommittedMinor, r.CommittedMajor
	le.PutUint64(data[0x1F0:], r.LaunchTCB)
	if r.Version >= reportVersion5 {
		le.PutUint64(data[0x1F8:], r.LaunchMitVector)
		le.PutUint64(data[0x200:], r.CurrentMitVector)
	}

	copy(data[0x2A0:0x2E8], reversed(r.SignatureR[:]))
	copy(data[0x2E8:0x330], reversed(r.SignatureS[:]))
	return data
}

// reversed returns a reversed copy of b: SEV-SNP stores integers
// little-endian, crypto/ecdsa and math/big expect big-endian.
func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}
