package kbs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/uuid"

	"github.com/cloister-dev/cloister/attest"
)

// The SEV-SNP guest attester of the Trustee guest components sends the
// report as the Rust sev crate's serde rendering: integers, nested TCB
// objects, and byte fields as JSON arrays of numbers, without the reserved
// fields. The signature covers the binary report, so the JSON is written
// back into the 1184-byte ATTESTATION_REPORT layout of the SEV-SNP
// firmware ABI, with zero in every reserved byte as firmware writes them.
// A field that does not survive the round trip makes the signature check
// fail, so a wrong reconstruction rejects evidence, never accepts it.

const snpReportSize = 0x4A0

// snpGuestEvidence is the snp attester's primary_evidence.
type snpGuestEvidence struct {
	Report    *snpJSONReport `json:"attestation_report"`
	CertChain []snpJSONCert  `json:"cert_chain"`
}

type snpJSONTCB struct {
	FMC        *uint8 `json:"fmc"`
	Bootloader uint8  `json:"bootloader"`
	TEE        uint8  `json:"tee"`
	SNP        uint8  `json:"snp"`
	Microcode  uint8  `json:"microcode"`
}

type snpJSONVersion struct {
	Major uint8 `json:"major"`
	Minor uint8 `json:"minor"`
	Build uint8 `json:"build"`
}

type snpJSONReport struct {
	Version          uint32         `json:"version"`
	GuestSVN         uint32         `json:"guest_svn"`
	Policy           uint64         `json:"policy"`
	FamilyID         byteArray      `json:"family_id"`
	ImageID          byteArray      `json:"image_id"`
	VMPL             uint32         `json:"vmpl"`
	SigAlgo          uint32         `json:"sig_algo"`
	CurrentTCB       snpJSONTCB     `json:"current_tcb"`
	PlatInfo         uint64         `json:"plat_info"`
	KeyInfo          uint32         `json:"key_info"`
	ReportData       byteArray      `json:"report_data"`
	Measurement      byteArray      `json:"measurement"`
	HostData         byteArray      `json:"host_data"`
	IDKeyDigest      byteArray      `json:"id_key_digest"`
	AuthorKeyDigest  byteArray      `json:"author_key_digest"`
	ReportID         byteArray      `json:"report_id"`
	ReportIDMA       byteArray      `json:"report_id_ma"`
	ReportedTCB      snpJSONTCB     `json:"reported_tcb"`
	CPUIDFamily      *uint8         `json:"cpuid_fam_id"`
	CPUIDModel       *uint8         `json:"cpuid_mod_id"`
	CPUIDStep        *uint8         `json:"cpuid_step"`
	ChipID           byteArray      `json:"chip_id"`
	CommittedTCB     snpJSONTCB     `json:"committed_tcb"`
	Current          snpJSONVersion `json:"current"`
	Committed        snpJSONVersion `json:"committed"`
	LaunchTCB        snpJSONTCB     `json:"launch_tcb"`
	LaunchMitVector  *uint64        `json:"launch_mit_vector"`
	CurrentMitVector *uint64        `json:"current_mit_vector"`
	Signature        struct {
		R byteArray `json:"r"`
		S byteArray `json:"s"`
	} `json:"signature"`
}

type snpJSONCert struct {
	CertType json.RawMessage `json:"cert_type"`
	Data     byteArray       `json:"data"`
}

// byteArray decodes a JSON array of numbers from 0 to 255.
type byteArray []byte

func (b *byteArray) UnmarshalJSON(data []byte) error {
	var nums []int
	if err := json.Unmarshal(data, &nums); err != nil {
		return fmt.Errorf("expected an array of byte values: %w", err)
	}
	out := make([]byte, len(nums))
	for i, n := range nums {
		if n < 0 || n > 255 {
			return fmt.Errorf("byte %d has value %d, outside 0 to 255", i, n)
		}
		out[i] = byte(n)
	}
	*b = out
	return nil
}

// tcbValue encodes a TCB_VERSION: FMC, BOOT_LOADER, TEE and SNP in bytes 0
// to 3 on Turin (which reports FMC), BOOT_LOADER, TEE, SNP in bytes 0, 1
// and 6 on Milan and Genoa; MICROCODE in byte 7 on all.
func (t snpJSONTCB) value() uint64 {
	var b [8]byte
	if t.FMC != nil {
		b[0], b[1], b[2], b[3] = *t.FMC, t.Bootloader, t.TEE, t.SNP
	} else {
		b[0], b[1], b[6] = t.Bootloader, t.TEE, t.SNP
	}
	b[7] = t.Microcode
	return binary.LittleEndian.Uint64(b[:])
}

// decodeSNPGuestJSON turns the snp attester's JSON into Cloister's
// evidence: the binary report, and the certificate chain as the
// certificate table an extended report carries.
func decodeSNPGuestJSON(raw json.RawMessage) (attest.Evidence, error) {
	var g snpGuestEvidence
	if err := json.Unmarshal(raw, &g); err != nil {
		return attest.Evidence{}, attest.Malformed("attestation_report", "invalid SEV-SNP guest evidence JSON", err)
	}
	if g.Report == nil {
		return attest.Evidence{}, attest.Malformed("attestation_report", "member is missing", nil)
	}
	report, err := g.Report.marshal()
	if err != nil {
		return attest.Evidence{}, err
	}
	ev := attest.Evidence{Format: string(attest.TEESNP), Data: report}
	if len(g.CertChain) > 0 {
		if ev.Aux, err = certTable(g.CertChain); err != nil {
			return attest.Evidence{}, err
		}
	}
	return ev, nil
}

func (r *snpJSONReport) marshal() ([]byte, error) {
	out := make([]byte, snpReportSize)
	le := binary.LittleEndian
	le.PutUint32(out[0x00:], r.Version)
	le.PutUint32(out[0x04:], r.GuestSVN)
	le.PutUint64(out[0x08:], r.Policy)
	le.PutUint32(out[0x30:], r.VMPL)
	le.PutUint32(out[0x34:], r.SigAlgo)
	le.PutUint64(out[0x38:], r.CurrentTCB.value())
	le.PutUint64(out[0x40:], r.PlatInfo)
	le.PutUint32(out[0x48:], r.KeyInfo)
	le.PutUint64(out[0x180:], r.ReportedTCB.value())
	le.PutUint64(out[0x1E0:], r.CommittedTCB.value())
	out[0x1E8], out[0x1E9], out[0x1EA] = r.Current.Build, r.Current.Minor, r.Current.Major
	out[0x1EC], out[0x1ED], out[0x1EE] = r.Committed.Build, r.Committed.Minor, r.Committed.Major
	le.PutUint64(out[0x1F0:], r.LaunchTCB.value())
	if r.CPUIDFamily != nil && r.CPUIDModel != nil && r.CPUIDStep != nil {
		out[0x188], out[0x189], out[0x18A] = *r.CPUIDFamily, *r.CPUIDModel, *r.CPUIDStep
	}
	if r.LaunchMitVector != nil && r.CurrentMitVector != nil {
		le.PutUint64(out[0x1F8:], *r.LaunchMitVector)
		le.PutUint64(out[0x200:], *r.CurrentMitVector)
	}

	fields := []struct {
		name   string
		value  []byte
		offset int
		size   int
	}{
		{"family_id", r.FamilyID, 0x10, 16},
		{"image_id", r.ImageID, 0x20, 16},
		{"report_data", r.ReportData, 0x50, 64},
		{"measurement", r.Measurement, 0x90, 48},
		{"host_data", r.HostData, 0xC0, 32},
		{"id_key_digest", r.IDKeyDigest, 0xE0, 48},
		{"author_key_digest", r.AuthorKeyDigest, 0x110, 48},
		{"report_id", r.ReportID, 0x140, 32},
		{"report_id_ma", r.ReportIDMA, 0x160, 32},
		{"chip_id", r.ChipID, 0x1A0, 64},
		{"signature.r", r.Signature.R, 0x2A0, 72},
		{"signature.s", r.Signature.S, 0x2E8, 72},
	}
	for _, f := range fields {
		if len(f.value) != f.size {
			return nil, attest.Malformed("attestation_report."+f.name, fmt.Sprintf("%d bytes, expected %d", len(f.value), f.size), nil)
		}
		copy(out[f.offset:], f.value)
	}
	return out, nil
}

// certTable encodes the guest's cert_chain as an SEV-SNP certificate table:
// 24-byte entries (GUID, little-endian offset and length) up to an
// all-zero entry, followed by the certificates.
func certTable(chain []snpJSONCert) ([]byte, error) {
	type entry struct {
		guid uuid.UUID
		data []byte
	}
	var entries []entry
	for i, c := range chain {
		var name string
		var other struct {
			OTHER string `json:"OTHER"`
		}
		var guid string
		switch {
		case json.Unmarshal(c.CertType, &name) == nil:
			switch name {
			case "VCEK":
				guid = abi.VcekGUID
			case "VLEK":
				guid = abi.VlekGUID
			case "ASK":
				guid = abi.AskGUID
			case "ARK":
				guid = abi.ArkGUID
			default:
				// CRL and Empty entries carry nothing the verifier reads
				// from the table.
				continue
			}
		case json.Unmarshal(c.CertType, &other) == nil && other.OTHER != "":
			guid = other.OTHER
		default:
			return nil, attest.Malformed(fmt.Sprintf("cert_chain[%d].cert_type", i), "not a certificate type name or {\"OTHER\": uuid}", nil)
		}
		id, err := uuid.Parse(guid)
		if err != nil {
			return nil, attest.Malformed(fmt.Sprintf("cert_chain[%d].cert_type", i), "invalid GUID", err)
		}
		entries = append(entries, entry{guid: id, data: c.Data})
	}

	header := (len(entries) + 1) * 24
	var buf bytes.Buffer
	buf.Grow(header)
	offset := header
	for _, e := range entries {
		buf.Write(e.guid[:])
		binary.Write(&buf, binary.LittleEndian, uint32(offset))
		binary.Write(&buf, binary.LittleEndian, uint32(len(e.data)))
		offset += len(e.data)
	}
	buf.Write(make([]byte, 24))
	for _, e := range entries {
		buf.Write(e.data)
	}
	return buf.Bytes(), nil
}
