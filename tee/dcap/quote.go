package dcap

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// Quote header constants from the Intel SGX ECDSA Quote Library reference
// (quote format v3) and the Intel TDX DCAP Quoting Library API (v4 and v5).
const (
	headerSize = 48

	// AttestationKeyECDSAP256 is the only attestation key type Intel's
	// quoting enclaves produce: ECDSA-256-with-P-256.
	AttestationKeyECDSAP256 = 2

	// TEETypeSGX and TEETypeTDX are the header's TEE type values.
	TEETypeSGX = 0x00000000
	TEETypeTDX = 0x00000081

	// Body descriptor types of quote v5.
	bodyTypeSGX   = 1
	bodyTypeTDX10 = 2
	bodyTypeTDX15 = 3

	ecdsaSignatureSize = 64
	ecdsaKeySize       = 64

	// Certification data types used by Intel's quoting enclaves.
	certTypePCKChain = 5
	certTypeQEReport = 6
)

// intelQEVendorID is the QE vendor ID of Intel's quoting enclaves. Intel's
// Quote Verification Library rejects a quote with any other vendor ID as an
// unsupported format.
var intelQEVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

// Header is the 48-byte quote header.
type Header struct {
	Version            uint16
	AttestationKeyType uint16
	// TEEType is 0 for SGX and 0x81 for TDX. Quote v3 has a reserved
	// field here, which is zero for SGX.
	TEEType uint32
	// QESVN and PCESVN are set in quote v3 only; v4 and v5 reserve them.
	QESVN      uint16
	PCESVN     uint16
	QEVendorID [16]byte
	UserData   [20]byte
}

// Quote is a parsed DCAP quote. The byte slices alias the input.
type Quote struct {
	Header Header
	// BodyType is the v5 body descriptor type, or the type implied by the
	// header for v3 and v4 (1 SGX, 2 TDX 1.0, 3 TDX 1.5).
	BodyType uint16
	// Enclave is set for SGX quotes, TD for TDX quotes.
	Enclave *EnclaveReport
	TD      *TDReport

	// SignedData is the header and body (with the v5 descriptor) that the
	// attestation key signs.
	SignedData []byte
	// Signature is the ECDSA signature over SignedData (r||s).
	Signature []byte
	// AttestationKey is the raw P-256 public key (x||y).
	AttestationKey []byte

	// QEReport is the raw 384-byte report of the quoting enclave, signed
	// by the PCK key; QE is its parsed form.
	QEReport          []byte
	QE                *EnclaveReport
	QEReportSignature []byte
	QEAuthData        []byte
	// PCKChainPEM is the type-5 certification data: the PEM chain from
	// the PCK leaf to the root.
	PCKChainPEM []byte

	// Length is the number of bytes the quote's own length fields cover.
	// Trailing bytes beyond it are tolerated and reported in Trailing.
	Length   int
	Trailing int
}

// reader reads fields from a byte slice, failing on the first read past
// its end instead of panicking.
type reader struct {
	buf   []byte
	off   int
	field string
	err   error
}

func (r *reader) take(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf)-r.off {
		r.err = attest.Malformed(field, fmt.Sprintf("needs %d bytes at offset %d, but only %d remain", n, r.off, len(r.buf)-r.off), nil)
		return nil
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *reader) u16(field string) uint16 {
	b := r.take(2, field)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *reader) u32(field string) uint32 {
	b := r.take(4, field)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// looksLikeQuote checks the fixed header fields that Detect uses.
func looksLikeQuote(data []byte) bool {
	if len(data) < headerSize {
		return false
	}
	version := binary.LittleEndian.Uint16(data[0:])
	keyType := binary.LittleEndian.Uint16(data[2:])
	tee := binary.LittleEndian.Uint32(data[4:])
	if version < 3 || version > 5 || keyType != AttestationKeyECDSAP256 {
		return false
	}
	if version == 3 {
		return tee == TEETypeSGX
	}
	return tee == TEETypeSGX || tee == TEETypeTDX
}

// ParseQuote parses a DCAP quote of version 3, 4 or 5. Every length is
// checked against the buffer before use, and bytes after the quote's own
// end are tolerated (some collection tools pad the file) and counted in
// Quote.Trailing.
func ParseQuote(data []byte) (*Quote, error) {
	if len(data) < headerSize {
		return nil, attest.Malformed("quote header", fmt.Sprintf("%d bytes is shorter than the %d-byte header", len(data), headerSize), nil)
	}
	q := &Quote{}
	r := &reader{buf: data}
	if err := q.parseHeader(r); err != nil {
		return nil, err
	}
	if err := q.parseBody(r); err != nil {
		return nil, err
	}
	q.SignedData = data[:r.off:r.off]

	sigLen := r.u32("signature data length")
	sigData := r.take(int(sigLen), "signature data")
	if r.err != nil {
		return nil, r.err
	}
	q.Length = r.off
	q.Trailing = len(data) - r.off
	if err := q.parseSignatureData(sigData); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *Quote) parseHeader(r *reader) error {
	h := &q.Header
	h.Version = r.u16("quote version")
	h.AttestationKeyType = r.u16("attestation key type")
	if h.Version < 3 || h.Version > 5 {
		return attest.Errorf(attest.ErrUnsupported, "quote version", "version %d is not supported", h.Version).
			WithFix("pass a DCAP quote of version 3, 4 or 5")
	}
	if h.AttestationKeyType != AttestationKeyECDSAP256 {
		return attest.Errorf(attest.ErrUnsupported, "attestation key type", "type %d is not ECDSA-256-with-P-256 (2)", h.AttestationKeyType)
	}
	h.TEEType = r.u32("TEE type")
	if h.TEEType != TEETypeSGX && h.TEEType != TEETypeTDX {
		return attest.Errorf(attest.ErrUnsupported, "TEE type", "TEE type %#x is neither SGX (0x0) nor TDX (0x81)", h.TEEType)
	}
	if h.Version == 3 && h.TEEType != TEETypeSGX {
		return attest.Errorf(attest.ErrUnsupported, "quote version", "a version 3 quote must be an SGX quote, not TEE type %#x", h.TEEType)
	}
	h.QESVN = r.u16("QE SVN")
	h.PCESVN = r.u16("PCE SVN")
	copy(h.QEVendorID[:], r.take(16, "QE vendor ID"))
	copy(h.UserData[:], r.take(20, "user data"))
	return r.err
}

// checkQEVendor requires Intel's QE vendor ID. ParseQuote leaves it to
// Verify, so that Inspect still decodes a quote of another vendor.
func checkQEVendor(h *Header) error {
	if h.QEVendorID != intelQEVendorID {
		return attest.Errorf(attest.ErrUnsupported, "QE vendor ID", "the quote names QE vendor %x, not Intel's quoting enclave", h.QEVendorID).
			WithValues(hex.EncodeToString(h.QEVendorID[:]), hex.EncodeToString(intelQEVendorID[:])).
			WithFix("pass a quote produced by Intel's quoting enclave (QE3 or the TD QE)")
	}
	return nil
}

func (q *Quote) parseBody(r *reader) error {
	switch {
	case q.Header.Version == 5:
		q.BodyType = r.u16("body descriptor type")
		size := r.u32("body descriptor size")
		if r.err != nil {
			return r.err
		}
		want := map[uint16]uint32{bodyTypeSGX: enclaveReportSize, bodyTypeTDX10: tdReport10Size, bodyTypeTDX15: tdReport15Size}[q.BodyType]
		if want == 0 {
			return attest.Errorf(attest.ErrUnsupported, "body descriptor type", "body type %d is not SGX (1), TDX 1.0 (2) or TDX 1.5 (3)", q.BodyType)
		}
		if size != want {
			return attest.Malformed("body descriptor size", fmt.Sprintf("size %d does not match the %d bytes of body type %d", size, want, q.BodyType), nil)
		}
		if (q.BodyType == bodyTypeSGX) != (q.Header.TEEType == TEETypeSGX) {
			return attest.Malformed("body descriptor type", fmt.Sprintf("body type %d does not match TEE type %#x", q.BodyType, q.Header.TEEType), nil)
		}
	case q.Header.TEEType == TEETypeSGX:
		q.BodyType = bodyTypeSGX
	default:
		q.BodyType = bodyTypeTDX10
	}

	var err error
	switch q.BodyType {
	case bodyTypeSGX:
		q.Enclave, err = ParseEnclaveReport(r.take(enclaveReportSize, "enclave report body"))
	case bodyTypeTDX10:
		q.TD, err = ParseTDReport(r.take(tdReport10Size, "TD report body"))
	case bodyTypeTDX15:
		q.TD, err = ParseTDReport(r.take(tdReport15Size, "TD report body"))
	}
	if r.err != nil {
		return r.err
	}
	return err
}

// parseSignatureData parses the ECDSA-256 quote signature data. Version 3
// carries the QE report directly followed by a type-5 chain; versions 4 and
// 5 wrap the QE report in type-6 certification data.
func (q *Quote) parseSignatureData(data []byte) error {
	r := &reader{buf: data}
	q.Signature = r.take(ecdsaSignatureSize, "quote signature")
	q.AttestationKey = r.take(ecdsaKeySize, "attestation key")
	if r.err != nil {
		return r.err
	}
	if q.Header.Version == 3 {
		if err := q.parseQEReportCertData(r); err != nil {
			return err
		}
		return q.expectEnd(r, "signature data")
	}

	certType := r.u16("certification data type")
	certData := r.take(int(r.u32("certification data size")), "certification data")
	if r.err != nil {
		return r.err
	}
	if certType != certTypeQEReport {
		return attest.Errorf(attest.ErrUnsupported, "certification data type", "type %d is not QE report certification data (6)", certType).
			WithFix("a version 4 or 5 quote from Intel's quoting enclave carries type 6; regenerate the quote")
	}
	if err := q.expectEnd(r, "signature data"); err != nil {
		return err
	}
	inner := &reader{buf: certData}
	if err := q.parseQEReportCertData(inner); err != nil {
		return err
	}
	return q.expectEnd(inner, "QE report certification data")
}

// parseQEReportCertData parses the QE report, its signature, the QE
// authentication data and the type-5 PCK chain that follows them.
func (q *Quote) parseQEReportCertData(r *reader) error {
	q.QEReport = r.take(enclaveReportSize, "QE report")
	q.QEReportSignature = r.take(ecdsaSignatureSize, "QE report signature")
	q.QEAuthData = r.take(int(r.u16("QE authentication data size")), "QE authentication data")
	certType := r.u16("PCK certification data type")
	chain := r.take(int(r.u32("PCK certification data size")), "PCK certification data")
	if r.err != nil {
		return r.err
	}
	if certType != certTypePCKChain {
		return attest.Errorf(attest.ErrUnsupported, "PCK certification data type", "type %d is not a PCK certificate chain (5)", certType).
			WithFix("collect the quote with a quote provider that embeds the PCK certificate chain")
	}
	q.PCKChainPEM = chain
	var err error
	q.QE, err = ParseEnclaveReport(q.QEReport)
	return err
}

func (q *Quote) expectEnd(r *reader, field string) error {
	if r.off != len(r.buf) {
		return attest.Malformed(field, fmt.Sprintf("%d bytes follow its last field", len(r.buf)-r.off), nil)
	}
	return nil
}

// TEE returns the quote's TEE name, "sgx" or "tdx".
func (q *Quote) TEE() attest.TEE {
	if q.Header.TEEType == TEETypeTDX {
		return attest.TEETDX
	}
	return attest.TEESGX
}
