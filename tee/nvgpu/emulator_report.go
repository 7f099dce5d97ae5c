package nvgpu

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
)

// report returns one GPU's GET_MEASUREMENTS request for every block with
// a signature, and the MEASUREMENTS response signed by the GPU's leaf key,
// in the layout that ParseReport reads.
func (e *Emulator) report(g *emulatedGPU, nonce [NonceSize]byte) ([]byte, error) {
	out := []byte{spdmVersion11, codeGetMeasurements, attrSignatureRequested, 0xff}
	out = append(out, nonce[:]...)
	out = append(out, 0) // SlotIDParam: certificate slot 0

	record := measurementRecord()
	out = append(out, spdmVersion11, codeMeasurements, 0, 0, emulatedBlocks)
	n := len(record)
	out = append(out, byte(n), byte(n>>8), byte(n>>16))
	out = append(out, record...)

	var responderNonce [NonceSize]byte
	if _, err := rand.Read(responderNonce[:]); err != nil {
		return nil, err
	}
	out = append(out, responderNonce[:]...)
	opaque := e.opaqueData()
	out = binary.LittleEndian.AppendUint16(out, uint16(len(opaque)))
	out = append(out, opaque...)

	// SPDM 1.1 signs SHA-384 of the request and the response up to the
	// signature, with no signing context prefix (see findSigner).
	digest := sha512.Sum384(out)
	r, s, err := ecdsa.Sign(rand.Reader, g.leafKey, digest[:])
	if err != nil {
		return nil, err
	}
	out = append(out, r.FillBytes(make([]byte, SignatureSize/2))...)
	return append(out, s.FillBytes(make([]byte, SignatureSize/2))...), nil
}

// measurementRecord encodes blocks 1 to emulatedBlocks in the DMTF
// measurement specification's layout, each a 48-byte digest.
func measurementRecord() []byte {
	var record []byte
	for i := 1; i <= emulatedBlocks; i++ {
		value := measurement(i)
		record = append(record, byte(i), measurementSpecDMTF)
		record = binary.LittleEndian.AppendUint16(record, uint16(3+len(value)))
		// DMTFSpecMeasurementValueType 0x01: a digest (bit 7 clear) of
		// mutable firmware.
		record = append(record, 0x01)
		record = binary.LittleEndian.AppendUint16(record, uint16(len(value)))
		record = append(record, value...)
	}
	return record
}

// opaqueData encodes the opaque data items that the verifier and the RIM
// check read: the driver and VBIOS versions, the chip SKU, the project and
// project SKU that name the RIMs, and the FWID.
// Text items end with a NUL byte, as in NVIDIA's reports.
func (e *Emulator) opaqueData() []byte {
	var out []byte
	item := func(typ uint16, value []byte) {
		out = binary.LittleEndian.AppendUint16(out, typ)
		out = binary.LittleEndian.AppendUint16(out, uint16(len(value)))
		out = append(out, value...)
	}
	text := func(s string) []byte { return append([]byte(s), 0) }
	item(opaqueDriverVersion, text(emulatedDriverVersion))
	item(opaqueVBIOSVersion, emulatedVBIOS)
	item(opaqueChipSKU, text(emulatedChipSKU))
	item(opaqueProject, text(emulatedProject))
	item(opaqueProjectSKU, text(emulatedProjectSKU))
	item(opaqueFWID, e.fwid)
	return out
}
