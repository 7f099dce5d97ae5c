package tpm

import (
	"encoding/binary"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/cloister-dev/cloister/attest"
)

// tpmGeneratedValue is TPM_GENERATED_VALUE, the magic that starts every
// structure the TPM signs. A restricted signing key signs no external data
// that starts with it, which is what makes a quote unforgeable.
const tpmGeneratedValue = 0xff544347

// Attest is a decoded TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE.
type Attest struct {
	// Raw is the signed TPMS_ATTEST encoding.
	Raw []byte
	// Body is the whole decoded structure.
	Body *tpm2.TPMSAttest
	// Quote is the quote-specific part: the PCR selection and digest.
	Quote *tpm2.TPMSQuoteInfo
}

// Nonce returns extraData, the caller's qualifying data.
func (a *Attest) Nonce() []byte { return a.Body.ExtraData.Buffer }

// ParseAttest decodes a TPMS_ATTEST and checks that it is a quote made by a
// TPM: magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE, and no bytes
// after the structure.
func ParseAttest(data []byte) (*Attest, error) {
	if len(data) < 6 {
		return nil, attest.Malformed("TPMS_ATTEST", fmt.Sprintf("%d bytes is shorter than the 6-byte magic and type", len(data)), nil)
	}
	if magic := binary.BigEndian.Uint32(data); magic != tpmGeneratedValue {
		return nil, attest.Malformed("TPMS_ATTEST.magic", "not TPM_GENERATED_VALUE, so a TPM did not produce this structure", nil).
			WithValues(fmt.Sprintf("%#08x", magic), fmt.Sprintf("%#08x", tpmGeneratedValue))
	}
	if typ := tpm2.TPMST(binary.BigEndian.Uint16(data[4:])); typ != tpm2.TPMSTAttestQuote {
		return nil, attest.Errorf(attest.ErrUnsupported, "TPMS_ATTEST.type", "the structure is %s, not a quote", attestTypeName(typ)).
			WithValues(fmt.Sprintf("%#04x", uint16(typ)), fmt.Sprintf("%#04x (TPM_ST_ATTEST_QUOTE)", uint16(tpm2.TPMSTAttestQuote))).
			WithFix("pass the output of TPM2_Quote")
	}
	body, err := tpm2.Unmarshal[tpm2.TPMSAttest](data)
	if err != nil {
		return nil, attest.Malformed("TPMS_ATTEST", "cannot be decoded", err)
	}
	quote, err := body.Attested.Quote()
	if err != nil {
		return nil, attest.Malformed("TPMS_ATTEST.attested", "contains no TPMS_QUOTE_INFO", err)
	}
	if n := quoteAttestSize(body, quote); n != len(data) {
		return nil, attest.Malformed("TPMS_ATTEST", fmt.Sprintf("%d bytes follow the %d-byte structure", len(data)-n, n), nil)
	}
	return &Attest{Raw: data, Body: body, Quote: quote}, nil
}

// quoteAttestSize returns the encoded size of a quote's TPMS_ATTEST. It
// replaces re-encoding the structure, which go-tpm does by reflection at
// about the cost of the signature check.
func quoteAttestSize(b *tpm2.TPMSAttest, q *tpm2.TPMSQuoteInfo) int {
	const fixed = 4 + 2 + // magic, type
		8 + 4 + 4 + 1 + // clockInfo
		8 + // firmwareVersion
		4 // TPML_PCR_SELECTION count
	n := fixed + 2 + len(b.QualifiedSigner.Buffer) + 2 + len(b.ExtraData.Buffer)
	for _, sel := range q.PCRSelect.PCRSelections {
		n += 2 + 1 + len(sel.PCRSelect)
	}
	return n + 2 + len(q.PCRDigest.Buffer)
}

// attestTypeName names the TPM_ST_ATTEST_* values of TPM 2.0 Part 2,
// section 6.9.
func attestTypeName(t tpm2.TPMST) string {
	switch t {
	case tpm2.TPMSTAttestNV:
		return "an NV certification (TPM_ST_ATTEST_NV)"
	case tpm2.TPMSTAttestCommandAudit:
		return "a command audit (TPM_ST_ATTEST_COMMAND_AUDIT)"
	case tpm2.TPMSTAttestSessionAudit:
		return "a session audit (TPM_ST_ATTEST_SESSION_AUDIT)"
	case tpm2.TPMSTAttestCertify:
		return "a key certification (TPM_ST_ATTEST_CERTIFY)"
	case tpm2.TPMSTAttestTime:
		return "a time attestation (TPM_ST_ATTEST_TIME)"
	case tpm2.TPMSTAttestCreation:
		return "a creation certification (TPM_ST_ATTEST_CREATION)"
	case tpm2.TPMSTAttestNVDigest:
		return "an NV digest certification (TPM_ST_ATTEST_NV_DIGEST)"
	}
	return "not a TPM_ST_ATTEST type"
}
