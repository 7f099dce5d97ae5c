package snp

import (
	"encoding/binary"
	"fmt"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/uuid"

	"github.com/cloister-dev/cloister/attest"
)

// GUIDs of the certificate table that an extended guest request (and
// configfs-tsm's auxblob) returns next to a report (AMD publication 56421,
// GHCB specification, MSG_REPORT_REQ).
var (
	guidVCEK = uuid.MustParse(abi.VcekGUID)
	guidVLEK = uuid.MustParse(abi.VlekGUID)
	guidASK  = uuid.MustParse(abi.AskGUID)
	guidARK  = uuid.MustParse(abi.ArkGUID)
)

// certTableEntrySize is the size of one table entry: a 16-byte GUID, a
// 32-bit offset and a 32-bit length.
const certTableEntrySize = 24

// certTableEntry is one certificate of a certificate table.
type certTableEntry struct {
	GUID uuid.UUID
	Data []byte
}

// parseCertTable parses a certificate table: entries up to an all-zero
// entry, each naming a byte range of data. Unlike go-sev-guest's parser it
// checks the ranges with 64-bit arithmetic, so no offset can wrap around.
func parseCertTable(data []byte) ([]certTableEntry, error) {
	var entries []certTableEntry
	var offsets []uint64
	headerEnd := 0
	for {
		if len(data)-headerEnd < certTableEntrySize {
			return nil, attest.Malformed("certificate table", fmt.Sprintf("entry %d is cut short: the table has no all-zero terminating entry within %d bytes", len(entries), len(data)), nil)
		}
		e := data[headerEnd : headerEnd+certTableEntrySize]
		headerEnd += certTableEntrySize
		guid, _ := uuid.FromBytes(e[:16])
		offset := uint64(binary.LittleEndian.Uint32(e[16:]))
		length := uint64(binary.LittleEndian.Uint32(e[20:]))
		if guid == (uuid.UUID{}) && offset == 0 && length == 0 {
			break
		}
		if offset+length > uint64(len(data)) {
			return nil, attest.Malformed("certificate table", fmt.Sprintf("entry %s names bytes %d to %d of a %d-byte table", guid, offset, offset+length, len(data)), nil)
		}
		entries = append(entries, certTableEntry{GUID: guid, Data: data[offset : offset+length]})
		offsets = append(offsets, offset)
	}
	for i, e := range entries {
		// A certificate must follow the header, or it would overlap it.
		if offsets[i] < uint64(headerEnd) && len(e.Data) > 0 {
			return nil, attest.Malformed("certificate table", fmt.Sprintf("entry %s starts at byte %d, inside the %d-byte header", e.GUID, offsets[i], headerEnd), nil)
		}
	}
	return entries, nil
}

// marshalCertTable encodes entries as a certificate table.
func marshalCertTable(entries []certTableEntry) []byte {
	header := (len(entries) + 1) * certTableEntrySize
	size := header
	for _, e := range entries {
		size += len(e.Data)
	}
	out := make([]byte, size)
	offset := header
	for i, e := range entries {
		h := out[i*certTableEntrySize:]
		copy(h[:16], e.GUID[:])
		binary.LittleEndian.PutUint32(h[16:], uint32(offset))
		binary.LittleEndian.PutUint32(h[20:], uint32(len(e.Data)))
		copy(out[offset:], e.Data)
		offset += len(e.Data)
	}
	return out
}
