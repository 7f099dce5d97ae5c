package nvgpu

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloister-dev/cloister/attest"
)

// Opaque data field types that NVIDIA GPUs place in the MEASUREMENTS
// response, as the nvtrust local GPU verifier numbers them.
const (
	opaqueDriverVersion    = 3
	opaqueVBIOSVersion     = 6
	opaqueChipSKU          = 15
	opaqueProject          = 17
	opaqueProjectSKU       = 18
	opaqueMeasurementCount = 12
	opaqueFWID             = 20
	opaqueInvalidType      = 255
	fwidSize               = 48
	opaqueItemHeaderSize   = 4
)

// opaqueNames are the names of the known opaque data types, used as claim
// attribute names. Text fields are listed in textFields.
var opaqueNames = map[uint16]string{
	1: "cert_issuer_name", 2: "cert_authority_key_identifier", 3: "driver_version", 4: "gpu_info",
	5: "sku", 6: "vbios_version", 7: "manufacturer_id", 8: "tamper_detection", 9: "smc",
	10: "vpr", 11: "nvdec0_status", 12: "measurement_count", 13: "cpr_info", 14: "board_id",
	15: "chip_sku", 16: "chip_sku_mod", 17: "project", 18: "project_sku", 19: "project_sku_mod",
	20: "fwid", 21: "protected_pcie_status", 22: "switch_pdi", 23: "floorswept_ports",
	24: "position_id", 25: "lock_switch_status", 32: "gpu_link_conn", 33: "sys_enable_status",
	34: "opaque_data_version", 35: "chip_info", 36: "feature_flag",
}

var textFields = map[uint16]bool{3: true, 15: true, 16: true, 17: true, 18: true, 19: true, 35: true}

// OpaqueField is one type-length-value item of the opaque data.
type OpaqueField struct {
	Type  uint16
	Value []byte
}

// OpaqueFields are the decoded opaque data items, in report order.
type OpaqueFields []OpaqueField

// ParseOpaque decodes NVIDIA's opaque data: items of a 2-byte type, a
// 2-byte length (both little-endian) and the value. A repeated type, the
// invalid type 255 or a truncated item is rejected. Unknown types are kept,
// because the opaque data is covered by the signature.
func ParseOpaque(data []byte) (OpaqueFields, error) {
	var fields OpaqueFields
	seen := map[uint16]bool{}
	r := reader{data: data, field: "OpaqueData"}
	for r.off < len(data) && r.err == nil {
		if len(data)-r.off < opaqueItemHeaderSize {
			return nil, attest.Malformed("OpaqueData", fmt.Sprintf("%d bytes after the last item, too short for an item header", len(data)-r.off), nil)
		}
		typ := r.uint16()
		size := int(r.uint16())
		value := r.bytes(size, fmt.Sprintf("item %d", typ))
		if r.err != nil {
			break
		}
		if typ == opaqueInvalidType || seen[typ] {
			return nil, attest.Malformed("OpaqueData", fmt.Sprintf("item type %d is invalid or appears twice", typ), nil)
		}
		seen[typ] = true
		fields = append(fields, OpaqueField{Type: typ, Value: value})
	}
	if r.err != nil {
		return nil, r.err
	}
	return fields, nil
}

// Get returns the value of the item of type typ.
func (f OpaqueFields) Get(typ uint16) ([]byte, bool) {
	for _, it := range f {
		if it.Type == typ {
			return it.Value, true
		}
	}
	return nil, false
}

// FWID returns the 48-byte firmware ID, which must be present.
func (f OpaqueFields) FWID() ([]byte, error) {
	v, ok := f.Get(opaqueFWID)
	if !ok {
		return nil, attest.Malformed("OpaqueData.fwid", "the report carries no FWID, so it cannot be matched with the device certificate", nil)
	}
	if len(v) != fwidSize {
		return nil, attest.Malformed("OpaqueData.fwid", fmt.Sprintf("FWID is %d bytes; want %d (SHA-384)", len(v), fwidSize), nil)
	}
	return v, nil
}

// Attributes returns each item under its name: text items as text, the
// VBIOS version in NVIDIA's dotted form, the measurement count as numbers
// and every other item as hexadecimal.
func (f OpaqueFields) Attributes() map[string]any {
	out := make(map[string]any, len(f))
	for _, it := range f {
		name, ok := opaqueNames[it.Type]
		if !ok {
			name = "opaque_type_" + strconv.Itoa(int(it.Type))
		}
		switch {
		case textFields[it.Type]:
			out[name] = strings.TrimRight(string(it.Value), "\x00")
		case it.Type == opaqueVBIOSVersion:
			out[name] = vbiosVersion(it.Value)
		case it.Type == opaqueMeasurementCount && len(it.Value)%4 == 0:
			counts := make([]uint32, len(it.Value)/4)
			for i := range counts {
				counts[i] = binary.LittleEndian.Uint32(it.Value[4*i:])
			}
			out[name] = counts
		default:
			out[name] = hex.EncodeToString(it.Value)
		}
	}
	return out
}

// vbiosVersion formats the VBIOS version as NVIDIA prints it: the first half
// of the bytes in reverse order, then the first byte of the second half, in
// dotted hexadecimal (009f009601000000 is 96.00.9f.00.01).
func vbiosVersion(b []byte) string {
	if len(b) < 2 {
		return hex.EncodeToString(b)
	}
	half := len(b) / 2
	parts := make([]string, 0, half+1)
	for i := half - 1; i >= 0; i-- {
		parts = append(parts, fmt.Sprintf("%02x", b[i]))
	}
	parts = append(parts, fmt.Sprintf("%02x", b[half]))
	return strings.Join(parts, ".")
}
