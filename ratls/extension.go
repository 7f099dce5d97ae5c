package ratls

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/cloister-dev/cloister/attest"
)

// The X.509 extensions that carry attestation evidence.
var (
	// OIDTaggedEvidence is the TCG DICE "tagged evidence" extension
	// (tcg-dice-conceptual-message-wrapper). Its value is a CBOR tag whose
	// number names the evidence format.
	OIDTaggedEvidence = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 9}
	// OIDEndorsementManifest is the TCG DICE endorsement extension. Cloister
	// uses it for the auxiliary data that comes with the evidence, such as
	// the SEV-SNP certificate table.
	OIDEndorsementManifest = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 2}
	// OIDGramineLegacyQuote is the extension of older Gramine certificates,
	// whose value is a raw SGX quote. Gramine writes the DER tag and length
	// bytes of the intended OID 1.2.840.113741.1337.6 into the OID body, so
	// parsers read it as 0.6.9.42.840.113741.1337.6. Both spellings are
	// accepted.
	OIDGramineLegacyQuote   = asn1.ObjectIdentifier{0, 6, 9, 42, 840, 113741, 1337, 6}
	OIDGramineIntendedQuote = asn1.ObjectIdentifier{1, 2, 840, 113741, 1337, 6}
	// OIDOpenEnclaveEvidence is the Open Enclave evidence extension that
	// oe_get_attestation_certificate_with_evidence writes: an OE
	// attestation header followed by the plugin's evidence.
	// OIDOpenEnclaveEvidenceLegacy is the same extension under the OID of
	// older Open Enclave releases, which Open Enclave still reads.
	OIDOpenEnclaveEvidence       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 105, 2}
	OIDOpenEnclaveEvidenceLegacy = asn1.ObjectIdentifier{1, 2, 840, 113556, 10, 1, 2}
	// OIDOpenEnclaveReport and OIDOpenEnclaveReportLegacy carry an OE
	// report (oe_report_header_t and an SGX quote over the hash of the PEM
	// public key), which oe_generate_attestation_certificate writes.
	// Cloister does not read that layout, and rejects certificates that
	// carry it rather than ignore the extension.
	OIDOpenEnclaveReport       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 105, 1}
	OIDOpenEnclaveReportLegacy = asn1.ObjectIdentifier{1, 2, 840, 113556, 10, 1, 1}
)

// CBOR tags of the tagged-evidence extension.
const (
	// TagIntelQuoteGramine is the tag Gramine uses for an SGX or TDX quote.
	TagIntelQuoteGramine uint64 = 60000
	// TagIntelQuote and TagSNPReport are the tags of the Inclavare
	// Containers rats-tls project for an Intel TEE quote and an SEV-SNP
	// attestation report.
	TagIntelQuote uint64 = 0x1a7501
	TagSNPReport  uint64 = 0x1a7504
)

// Layout names the way a certificate carries its evidence.
type Layout string

const (
	// LayoutTaggedEvidence is the TCG DICE tagged-evidence extension with
	// a CBOR array [evidence, claims] (Gramine, rats-tls, Cloister).
	LayoutTaggedEvidence Layout = "tcg-dice-tagged-evidence"
	// LayoutGramineLegacy is Gramine's older extension holding a raw quote.
	LayoutGramineLegacy Layout = "gramine-legacy-quote"
	// LayoutOpenEnclave is the Open Enclave evidence extension.
	LayoutOpenEnclave Layout = "open-enclave-evidence"
)

// Size limits for the extension parsers. A real SNP report is 1184 bytes,
// an SGX or TDX quote a few kilobytes with its PCK chain, an SNP
// certificate table about 4 KiB.
const (
	maxEvidenceSize = 1 << 20
	maxClaimsSize   = 64 << 10
)

// CertEvidence is the evidence found in an RA-TLS certificate, before any
// verification.
type CertEvidence struct {
	Layout Layout
	// OID is the extension the evidence came from.
	OID asn1.ObjectIdentifier
	// Tag is the CBOR tag of tagged evidence, zero for other layouts.
	Tag uint64
	// Evidence is the TEE's report or quote.
	Evidence []byte
	// Aux is the auxiliary data of the endorsement extension, if any.
	Aux []byte
	// ClaimsBuffer is the serialized CBOR claims map of tagged evidence,
	// whose hash the report data carries. For Open Enclave evidence it is
	// the custom claims buffer that follows the quote.
	ClaimsBuffer []byte
	// Claims is ClaimsBuffer decoded, for tagged evidence.
	Claims *CertClaims
	// Legacy is the Gramine legacy quote that Gramine 1.8 and later write
	// next to their tagged evidence, nil when the certificate has none.
	// VerifyCertificate verifies it too.
	Legacy *CertEvidence
}

// HasEvidenceExtension reports whether cert carries one of the evidence
// extensions, without parsing it.
func HasEvidenceExtension(cert *x509.Certificate) bool {
	for _, ext := range cert.Extensions {
		if isEvidenceOID(ext.Id) {
			return true
		}
	}
	return false
}

func isEvidenceOID(id asn1.ObjectIdentifier) bool {
	return id.Equal(OIDTaggedEvidence) || id.Equal(OIDGramineLegacyQuote) ||
		id.Equal(OIDGramineIntendedQuote) || isOpenEnclaveEvidenceOID(id) || isOpenEnclaveReportOID(id)
}

func isOpenEnclaveEvidenceOID(id asn1.ObjectIdentifier) bool {
	return id.Equal(OIDOpenEnclaveEvidence) || id.Equal(OIDOpenEnclaveEvidenceLegacy)
}

func isOpenEnclaveReportOID(id asn1.ObjectIdentifier) bool {
	return id.Equal(OIDOpenEnclaveReport) || id.Equal(OIDOpenEnclaveReportLegacy)
}

// ParseCertEvidence finds and decodes the evidence extension of cert.
// Exactly one evidence extension must be present: a certificate carrying
// two could show one verifier one quote and another verifier the other.
// The one exception is Gramine's pair of tagged evidence and legacy quote,
// whose legacy quote lands in CertEvidence.Legacy, and VerifyCertificate
// requires both quotes to come from the same enclave.
func ParseCertEvidence(cert *x509.Certificate) (*CertEvidence, error) {
	var found []pkix.Extension
	var aux []pkix.Extension
	for _, ext := range cert.Extensions {
		switch {
		case isEvidenceOID(ext.Id):
			found = append(found, ext)
		case ext.Id.Equal(OIDEndorsementManifest):
			aux = append(aux, ext)
		}
	}
	found, legacy := splitGramineLegacy(found)
	switch {
	case len(found) == 0:
		return nil, attest.Errorf(attest.ErrUnsupported, "certificate extensions",
			"no attestation evidence extension (expected %s, %s or %s)", OIDTaggedEvidence, OIDGramineLegacyQuote, OIDOpenEnclaveEvidence).
			WithFix("connect to an RA-TLS endpoint, or pass a certificate issued by an attested TEE")
	case len(found) > 1:
		return nil, attest.Errorf(attest.ErrMalformed, "certificate extensions",
			"%d attestation evidence extensions; exactly one is allowed", len(found))
	case len(aux) > 1:
		return nil, attest.Errorf(attest.ErrMalformed, "certificate extensions",
			"%d endorsement extensions (%s); at most one is allowed", len(aux), OIDEndorsementManifest)
	}

	ext := found[0]
	var ce *CertEvidence
	var err error
	switch {
	case ext.Id.Equal(OIDTaggedEvidence):
		ce, err = ParseTaggedEvidence(ext.Value)
	case isOpenEnclaveEvidenceOID(ext.Id):
		ce, err = ParseOpenEnclaveEvidence(ext.Value)
	case isOpenEnclaveReportOID(ext.Id):
		return nil, attest.Errorf(attest.ErrUnsupported, "certificate extensions",
			"extension %s holds an Open Enclave report (oe_generate_attestation_certificate), which Cloister does not read", ext.Id).
			WithFix(fmt.Sprintf("issue the certificate with oe_get_attestation_certificate_with_evidence, which writes evidence under %s", OIDOpenEnclaveEvidence))
	default:
		ce, err = parseLegacyQuote(ext.Value)
	}
	if err != nil {
		return nil, err
	}
	ce.OID = ext.Id
	if legacy != nil {
		if ce.Legacy, err = parseGramineLegacyPair(ce, *legacy); err != nil {
			return nil, err
		}
	}
	if len(aux) == 1 {
		if ce.Layout != LayoutTaggedEvidence {
			return nil, attest.Errorf(attest.ErrMalformed, "certificate extensions",
				"endorsement extension %s next to %s evidence, which does not use it", OIDEndorsementManifest, ce.Layout)
		}
		if ce.Aux, err = ParseEndorsements(aux[0].Value, ce.Tag); err != nil {
			return nil, err
		}
	}
	return ce, nil
}

// splitGramineLegacy separates the Gramine legacy quote extension from
// the evidence extensions when it sits next to a tagged-evidence
// extension, as in certificates of Gramine 1.8 and later. Any other
// combination is returned unchanged, so that the caller rejects it.
func splitGramineLegacy(found []pkix.Extension) ([]pkix.Extension, *pkix.Extension) {
	if len(found) != 2 {
		return found, nil
	}
	isLegacy := func(id asn1.ObjectIdentifier) bool {
		return id.Equal(OIDGramineLegacyQuote) || id.Equal(OIDGramineIntendedQuote)
	}
	for i, ext := range found {
		other := found[1-i]
		if isLegacy(ext.Id) && other.Id.Equal(OIDTaggedEvidence) {
			return []pkix.Extension{other}, &ext
		}
	}
	return found, nil
}

// parseGramineLegacyPair parses the legacy quote that accompanies the
// tagged evidence ce. Only Gramine writes both, so the tagged evidence
// must be Gramine's: an Intel quote under tag 60000 without Cloister's
// binding claim.
func parseGramineLegacyPair(ce *CertEvidence, legacy pkix.Extension) (*CertEvidence, error) {
	const field = "certificate extensions"
	const fix = "a certificate carries one evidence extension, or the two that Gramine writes; do not trust this one"
	if ce.Claims.Binding != "" {
		return nil, attest.Errorf(attest.ErrMalformed, field,
			"Gramine legacy quote %s next to Cloister tagged evidence, which Cloister never writes", legacy.Id).
			WithFix(fix)
	}
	if ce.Tag != TagIntelQuoteGramine {
		return nil, attest.Errorf(attest.ErrMalformed, field,
			"Gramine legacy quote %s next to tagged evidence with CBOR tag %#x, but Gramine pairs it only with the Intel quote tag %d", legacy.Id, ce.Tag, TagIntelQuoteGramine).
			WithFix(fix)
	}
	le, err := parseLegacyQuote(legacy.Value)
	if err != nil {
		return nil, err
	}
	le.OID = legacy.Id
	return le, nil
}

// decMode decodes untrusted CBOR strictly: no duplicate map keys, no
// indefinite lengths, bounded nesting and sizes.
var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 16,
		MaxMapPairs:      64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// encMode encodes with the core deterministic rules (RFC 8949 section
// 4.2.1), so that the claims buffer of equal claims is byte-identical.
var encMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// ParseTaggedEvidence decodes the value of a TCG DICE tagged-evidence
// extension: tag(N)([evidence: bstr, claims: bstr]). Cloister certificates
// use the same array; the auxiliary data travels in the endorsement
// extension so that the array stays readable by Gramine.
func ParseTaggedEvidence(value []byte) (*CertEvidence, error) {
	const field = "tagged evidence"
	var tagged cbor.RawTag
	if err := decMode.Unmarshal(value, &tagged); err != nil {
		return nil, attest.Malformed(field, "not a CBOR tag", err)
	}
	if !knownTag(tagged.Number) {
		return nil, attest.Errorf(attest.ErrUnsupported, field+" tag", "unknown CBOR tag %d (%#x)", tagged.Number, tagged.Number).
			WithFix(fmt.Sprintf("Cloister reads tags %d and %#x (Intel TEE quote) and %#x (SEV-SNP report)", TagIntelQuoteGramine, TagIntelQuote, TagSNPReport))
	}
	var parts []cbor.RawMessage
	if err := decMode.Unmarshal(tagged.Content, &parts); err != nil {
		return nil, attest.Malformed(field, "tag content is not a CBOR array", err)
	}
	if len(parts) != 2 {
		return nil, attest.Errorf(attest.ErrMalformed, field, "array has %d elements; expected 2 (evidence, claims)", len(parts))
	}
	var ev, claims []byte
	if err := decMode.Unmarshal(parts[0], &ev); err != nil {
		return nil, attest.Malformed(field+"[0]", "evidence is not a byte string", err)
	}
	if err := decMode.Unmarshal(parts[1], &claims); err != nil {
		return nil, attest.Malformed(field+"[1]", "claims are not a byte string", err)
	}
	if len(ev) == 0 {
		return nil, attest.Errorf(attest.ErrMalformed, field+"[0]", "evidence is empty")
	}
	if len(claims) == 0 || len(claims) > maxClaimsSize {
		return nil, attest.Errorf(attest.ErrMalformed, field+"[1]", "claims buffer of %d bytes; expected 1 to %d", len(claims), maxClaimsSize)
	}
	parsed, err := ParseClaims(claims)
	if err != nil {
		return nil, err
	}
	return &CertEvidence{Layout: LayoutTaggedEvidence, Tag: tagged.Number, Evidence: ev, ClaimsBuffer: claims, Claims: parsed}, nil
}

func knownTag(n uint64) bool {
	return n == TagIntelQuoteGramine || n == TagIntelQuote || n == TagSNPReport
}

// ParseEndorsements decodes the endorsement extension as Cloister writes
// it: tag(N)(aux: bstr), with the same tag as the evidence.
func ParseEndorsements(value []byte, evidenceTag uint64) ([]byte, error) {
	const field = "endorsement extension"
	var tagged cbor.RawTag
	if err := decMode.Unmarshal(value, &tagged); err != nil {
		return nil, attest.Malformed(field, "not a CBOR tag", err)
	}
	if tagged.Number != evidenceTag {
		return nil, attest.Errorf(attest.ErrMalformed, field, "CBOR tag %#x differs from the evidence tag %#x", tagged.Number, evidenceTag)
	}
	var aux []byte
	if err := decMode.Unmarshal(tagged.Content, &aux); err != nil {
		return nil, attest.Malformed(field, "content is not a byte string", err)
	}
	return aux, nil
}

// parseLegacyQuote takes the value of Gramine's legacy extension, a raw SGX
// quote. Only its size is checked here, because the SGX verifier checks
// the quote itself. An SGX quote v3 has at least 48 + 384 + 4 bytes.
func parseLegacyQuote(value []byte) (*CertEvidence, error) {
	const minQuote = 48 + 384 + 4
	if len(value) < minQuote || len(value) > maxEvidenceSize {
		return nil, attest.Errorf(attest.ErrMalformed, "legacy quote extension", "%d bytes; an SGX quote has %d to %d", len(value), minQuote, maxEvidenceSize)
	}
	return &CertEvidence{Layout: LayoutGramineLegacy, Evidence: bytes.Clone(value)}, nil
}

// Open Enclave attestation header: version (uint32), format UUID (16
// bytes), data size (uint64), all little-endian, then the data.
const (
	oeHeaderSize    = 4 + 16 + 8
	oeHeaderVersion = 3
)

// OEFormatSGXECDSA is the Open Enclave format UUID of SGX ECDSA evidence
// (a quote followed by the custom claims buffer).
var OEFormatSGXECDSA = [16]byte{0xa3, 0xa2, 0x1e, 0x87, 0x1b, 0x4d, 0x40, 0x14, 0xb7, 0x0a, 0xa1, 0x25, 0xd2, 0xfb, 0xcd, 0x8c}

// ParseOpenEnclaveEvidence decodes an Open Enclave evidence extension. The
// data after the header is an SGX quote followed by the custom claims
// buffer, whose SHA-256 the quote's report data carries.
func ParseOpenEnclaveEvidence(value []byte) (*CertEvidence, error) {
	const field = "Open Enclave evidence"
	if len(value) < oeHeaderSize {
		return nil, attest.Errorf(attest.ErrMalformed, field, "%d bytes is shorter than the %d-byte attestation header", len(value), oeHeaderSize)
	}
	if version := binary.LittleEndian.Uint32(value[0:4]); version != oeHeaderVersion {
		return nil, attest.Errorf(attest.ErrUnsupported, field+" version", "attestation header version %d; Cloister reads version %d", version, oeHeaderVersion)
	}
	var format [16]byte
	copy(format[:], value[4:20])
	size := binary.LittleEndian.Uint64(value[20:28])
	data := value[oeHeaderSize:]
	if size != uint64(len(data)) {
		return nil, attest.Errorf(attest.ErrMalformed, field+" data_size", "header declares %d bytes but %d follow", size, len(data))
	}
	if format != OEFormatSGXECDSA {
		return nil, attest.Errorf(attest.ErrUnsupported, field+" format_id", "format %x is not SGX ECDSA (%x)", format, OEFormatSGXECDSA)
	}
	quoteLen, err := sgxQuoteLength(data)
	if err != nil {
		return nil, err
	}
	return &CertEvidence{Layout: LayoutOpenEnclave, Evidence: bytes.Clone(data[:quoteLen]), ClaimsBuffer: bytes.Clone(data[quoteLen:])}, nil
}

// sgxQuoteLength returns the length of the SGX quote v3 at the start of
// data: a 48-byte header, a 384-byte report body, a 4-byte signature data
// length and the signature data.
func sgxQuoteLength(data []byte) (int, error) {
	const fixed = 48 + 384 + 4
	if len(data) < fixed {
		return 0, attest.Errorf(attest.ErrMalformed, "SGX quote", "%d bytes is shorter than the %d-byte fixed part", len(data), fixed)
	}
	sigLen := uint64(binary.LittleEndian.Uint32(data[fixed-4 : fixed]))
	if sigLen > uint64(len(data)-fixed) {
		return 0, attest.Errorf(attest.ErrMalformed, "SGX quote signature_data_len", "%d bytes declared, %d present", sigLen, len(data)-fixed)
	}
	return fixed + int(sigLen), nil
}

func cborTag(number uint64, content any) cbor.Tag {
	return cbor.Tag{Number: number, Content: content}
}
