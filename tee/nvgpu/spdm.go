package nvgpu

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// SPDM 1.1 (DMTF DSP0274 1.1) constants of the GET_MEASUREMENTS exchange.
const (
	spdmVersion11       = 0x11
	codeGetMeasurements = 0xe0
	codeMeasurements    = 0x60
	// attrSignatureRequested is bit 0 of the request's Param1.
	attrSignatureRequested = 0x01
	// operationAllBlocks is the request's Param2 that requests every
	// measurement block. Other values request one block or, with 0, only
	// the number of blocks.
	operationAllBlocks = 0xff
	// NonceSize is the size in bytes of the requester nonce of an SPDM
	// GET_MEASUREMENTS request. The responder nonce of the MEASUREMENTS
	// response has the same size.
	NonceSize = 32
	// requestSize is a GET_MEASUREMENTS request with a signature
	// requested: four header bytes, the nonce and SlotIDParam.
	requestSize = 4 + NonceSize + 1
	// measurementSpecDMTF is bit 0 of a block's MeasurementSpecification.
	measurementSpecDMTF = 0x01
	// SignatureSize is an ECDSA P-384 signature, r and s of 48 bytes each,
	// the only signature NVIDIA Hopper GPUs produce.
	SignatureSize = 96
)

// Request is a decoded SPDM GET_MEASUREMENTS request.
type Request struct {
	Version byte
	// Param1 holds the request attributes; bit 0 requests a signature.
	Param1 byte
	// Operation is Param2: 0xff requests every measurement block.
	Operation byte
	Nonce     [NonceSize]byte
	SlotID    byte
}

// MeasurementBlock is one block of the measurement record in the DMTF
// measurement specification's layout.
type MeasurementBlock struct {
	Index byte
	// ValueType is DMTFSpecMeasurementValueType: bit 7 set means a raw
	// bit stream, clear means a digest; bits 0-6 name what was measured.
	ValueType byte
	Value     []byte
}

// Response is a decoded SPDM MEASUREMENTS response.
type Response struct {
	Version byte
	Param1  byte
	Param2  byte
	Blocks  []MeasurementBlock
	Nonce   [NonceSize]byte
	// Opaque is the raw opaque data; Fields is its decoded form.
	Opaque    []byte
	Fields    OpaqueFields
	Signature []byte
}

// Report is one GPU's evidence: the request and response of one
// GET_MEASUREMENTS exchange.
type Report struct {
	Request  Request
	Response Response
	// Signed is the transcript the signature covers: the request followed
	// by the response up to the signature.
	Signed []byte
	// Trailing counts the zero bytes after the signature, which some
	// drivers append and which no signature covers.
	Trailing int
}

// blockIndexFix is the fix of an error about a measurement block's index.
// A GPU numbers the blocks of a GET_MEASUREMENTS response for all blocks
// 1 to NumberOfBlocks, each once.
const blockIndexFix = "collect the report again with a GET_MEASUREMENTS request for all blocks (Param2 0xff), as NVIDIA's attestation SDK sends it"

// ParseReport decodes the concatenated GET_MEASUREMENTS request and
// MEASUREMENTS response. Zero bytes after the signature are tolerated and
// counted, because real reports carry a padding byte there; any other
// trailing byte is rejected.
func ParseReport(data []byte) (*Report, error) {
	req, err := parseRequest(data)
	if err != nil {
		return nil, err
	}
	resp, end, err := parseResponse(data[requestSize:])
	if err != nil {
		return nil, err
	}
	end += requestSize
	rest := data[end:]
	if len(bytes.Trim(rest, "\x00")) != 0 {
		return nil, attest.Malformed("MEASUREMENTS", fmt.Sprintf("%d bytes after the signature, not all zero", len(rest)), nil)
	}
	return &Report{
		Request:  *req,
		Response: *resp,
		Signed:   data[:end-SignatureSize],
		Trailing: len(rest),
	}, nil
}

func parseRequest(data []byte) (*Request, error) {
	if len(data) < requestSize {
		return nil, attest.Malformed("GET_MEASUREMENTS", fmt.Sprintf("report is %d bytes, shorter than the %d-byte request", len(data), requestSize), nil)
	}
	req := &Request{Version: data[0], Param1: data[2], Operation: data[3], SlotID: data[4+NonceSize]}
	copy(req.Nonce[:], data[4:4+NonceSize])
	if req.Version != spdmVersion11 {
		return nil, attest.Errorf(attest.ErrUnsupported, "GET_MEASUREMENTS.SPDMVersion", "SPDM version 0x%02x is not supported; NVIDIA GPU reports use SPDM 1.1 (0x11)", req.Version)
	}
	if data[1] != codeGetMeasurements {
		return nil, attest.Malformed("GET_MEASUREMENTS.RequestResponseCode", fmt.Sprintf("code 0x%02x is not GET_MEASUREMENTS (0xe0)", data[1]), nil)
	}
	if req.Param1&attrSignatureRequested == 0 {
		return nil, attest.Malformed("GET_MEASUREMENTS.Param1", "the request did not ask for a signature, so the response is not signed", nil)
	}
	// A response to a request for one block, or for the count only, leaves
	// out the blocks that a policy or a RIM would compare.
	if req.Operation != operationAllBlocks {
		return nil, attest.Malformed("GET_MEASUREMENTS.Param2", fmt.Sprintf("measurement operation 0x%02x does not request every measurement block (0xff)", req.Operation), nil).
			WithFix("collect the report with a GET_MEASUREMENTS request for all blocks, as NVIDIA's attestation tools send it")
	}
	return req, nil
}

// parseResponse decodes the MEASUREMENTS response and returns the offset of
// the end of its signature.
func parseResponse(data []byte) (*Response, int, error) {
	r := reader{data: data, field: "MEASUREMENTS"}
	resp := &Response{}
	resp.Version = r.byte()
	code := r.byte()
	resp.Param1 = r.byte()
	resp.Param2 = r.byte()
	numBlocks := int(r.byte())
	recordLen := int(r.uint24())
	record := r.bytes(recordLen, "MeasurementRecord")
	copy(resp.Nonce[:], r.bytes(NonceSize, "Nonce"))
	opaqueLen := int(r.uint16())
	resp.Opaque = r.bytes(opaqueLen, "OpaqueData")
	resp.Signature = r.bytes(SignatureSize, "Signature")
	if r.err != nil {
		return nil, 0, r.err
	}

	if resp.Version != spdmVersion11 {
		return nil, 0, attest.Errorf(attest.ErrUnsupported, "MEASUREMENTS.SPDMVersion", "SPDM version 0x%02x is not supported; NVIDIA GPU reports use SPDM 1.1 (0x11)", resp.Version)
	}
	if code != codeMeasurements {
		return nil, 0, attest.Malformed("MEASUREMENTS.RequestResponseCode", fmt.Sprintf("code 0x%02x is not MEASUREMENTS (0x60)", code), nil)
	}
	var err error
	if resp.Blocks, err = parseRecord(record, numBlocks); err != nil {
		return nil, 0, err
	}
	if resp.Fields, err = ParseOpaque(resp.Opaque); err != nil {
		return nil, 0, err
	}
	return resp, r.off, nil
}

// parseRecord decodes the measurement record, which must hold exactly
// numBlocks blocks, at least one, and nothing after them. The indexes must
// be distinct and lie in 1..numBlocks, so that together they are exactly
// 1..numBlocks, as NVIDIA's local GPU verifier requires.
func parseRecord(record []byte, numBlocks int) ([]MeasurementBlock, error) {
	if numBlocks == 0 {
		return nil, attest.Malformed("MEASUREMENTS.NumberOfBlocks", "NumberOfBlocks is 0: the response carries no measurement block, so it attests no firmware", nil).
			WithFix("collect the report with a GET_MEASUREMENTS request for all blocks, as NVIDIA's attestation tools send it")
	}
	r := reader{data: record, field: "MeasurementRecord"}
	blocks := make([]MeasurementBlock, 0, numBlocks)
	seen := map[byte]bool{}
	for i := 0; i < numBlocks; i++ {
		index := r.byte()
		spec := r.byte()
		size := int(r.uint16())
		m := reader{data: r.bytes(size, "Measurement"), field: fmt.Sprintf("MeasurementRecord block %d", index)}
		if r.err != nil {
			return nil, r.err
		}
		if spec != measurementSpecDMTF {
			return nil, attest.Malformed(m.field, fmt.Sprintf("MeasurementSpecification 0x%02x is not the DMTF layout (0x01)", spec), nil)
		}
		b := MeasurementBlock{Index: index, ValueType: m.byte()}
		valueSize := int(m.uint16())
		b.Value = m.bytes(valueSize, "DMTFSpecMeasurementValue")
		if m.err != nil {
			return nil, m.err
		}
		if m.off != len(m.data) {
			return nil, attest.Malformed(m.field, fmt.Sprintf("MeasurementSize %d disagrees with the %d-byte DMTF value", size, valueSize), nil)
		}
		if index == 0 || int(index) > numBlocks {
			return nil, attest.Malformed(m.field, fmt.Sprintf("measurement index %d is outside 1..%d, the range that NumberOfBlocks gives", index, numBlocks), nil).
				WithFix(blockIndexFix)
		}
		if seen[index] {
			return nil, attest.Malformed(m.field, fmt.Sprintf("measurement index %d appears twice", index), nil).
				WithFix(blockIndexFix)
		}
		seen[index] = true
		blocks = append(blocks, b)
	}
	if r.off != len(record) {
		return nil, attest.Malformed("MeasurementRecord", fmt.Sprintf("%d bytes after the %d blocks that NumberOfBlocks gives", len(record)-r.off, numBlocks), nil)
	}
	return blocks, nil
}

// reader reads little-endian fields and remembers the first overrun, so
// that a sequence of reads needs one error check.
type reader struct {
	data  []byte
	off   int
	field string
	err   error
}

func (r *reader) bytes(n int, name string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.data)-r.off < n {
		r.err = attest.Malformed(r.field+"."+name, fmt.Sprintf("truncated: %d bytes needed at offset %d, %d left", n, r.off, len(r.data)-r.off), nil)
		return nil
	}
	b := r.data[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) byte() byte {
	if b := r.bytes(1, "field"); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) uint16() uint16 {
	if b := r.bytes(2, "length"); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) uint24() uint32 {
	if b := r.bytes(3, "length"); b != nil {
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	}
	return 0
}
