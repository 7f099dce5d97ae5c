package azurevtpm

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/tpm"
)

// Evidence is the decoded evidence JSON of an Azure confidential VM.
// Nothing in it is verified.
type Evidence struct {
	// Version is 0 for the legacy encoding (arrays of byte values, PEM
	// VCEK) and 1 for base64url and hex strings. Version 2 has the
	// encoding of version 1, and its HCL user data carries the same
	// runtime data as the vTPM quote nonce. Current Trustee guests send
	// version 2 with padded base64url.
	Version int
	// HCLReport is the raw HCL report.
	HCLReport []byte
	// Quote is the vTPM quote. Its signature is a bare RSASSA-PKCS1-v1_5
	// SHA-256 signature, which is what the vTPM's AK produces.
	Quote tpm.Quote
	// VCEK is the DER VCEK certificate of an SEV-SNP VM, when carried.
	VCEK []byte
	// TDQuote is the TD quote of a TDX VM.
	TDQuote []byte
}

// maxVersion is the newest evidence version this package decodes.
const maxVersion = 2

// rawEvidence contains the JSON fields of both encodings. A field is a JSON
// string or an array of byte values.
type rawEvidence struct {
	Version   int        `json:"version"`
	HCLReport *jsonBytes `json:"hcl_report"`
	Report    *jsonBytes `json:"report"`
	TPMQuote  *rawQuote  `json:"tpm_quote"`
	Quote     *rawQuote  `json:"quote"`
	VCEK      *jsonBytes `json:"vcek"`
	TDQuote   *jsonBytes `json:"td_quote"`
}

type rawQuote struct {
	Message   *jsonBytes  `json:"message"`
	Signature *jsonBytes  `json:"signature"`
	PCRs      []jsonBytes `json:"pcrs"`
}

// jsonBytes is a byte string encoded as a JSON array of byte values or as
// a JSON string, whose encoding the field decides.
type jsonBytes struct {
	array []byte
	text  *string
}

func (j *jsonBytes) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		j.text = &s
		return nil
	}
	var values []int
	if err := json.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("want a string or an array of byte values: %w", err)
	}
	j.array = make([]byte, len(values))
	for i, v := range values {
		if v < 0 || v > 255 {
			return fmt.Errorf("element %d is %d, not a byte value", i, v)
		}
		j.array[i] = byte(v)
	}
	return nil
}

// hex decodes a string field as hexadecimal.
func (j *jsonBytes) hex(field string) ([]byte, error) {
	if j == nil {
		return nil, attest.Malformed(field, "missing", nil)
	}
	if j.text == nil {
		return j.array, nil
	}
	b, err := hex.DecodeString(*j.text)
	if err != nil {
		return nil, attest.Malformed(field, "is not hexadecimal", err)
	}
	return b, nil
}

// binary decodes a string field as PEM or base64 (URL or standard
// alphabet, with or without padding).
func (j *jsonBytes) binary(field string) ([]byte, error) {
	if j == nil {
		return nil, attest.Malformed(field, "missing", nil)
	}
	if j.text == nil {
		return j.array, nil
	}
	s := strings.TrimSpace(*j.text)
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, attest.Malformed(field, "is not valid PEM", nil)
		}
		return block.Bytes, nil
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, attest.Malformed(field, "is neither PEM nor base64", nil)
}

// ParseEvidence decodes the evidence JSON in either encoding.
func ParseEvidence(data []byte) (*Evidence, error) {
	var raw rawEvidence
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, attest.Malformed("evidence", "is not Azure vTPM evidence JSON", err)
	}
	ev := &Evidence{Version: raw.Version}
	if raw.Version < 0 || raw.Version > maxVersion {
		return nil, attest.Errorf(attest.ErrUnsupported, "version", "evidence version %d is not 0, 1 or 2", raw.Version)
	}

	report, field := raw.HCLReport, "hcl_report"
	if report == nil {
		report, field = raw.Report, "report"
	}
	var err error
	if ev.HCLReport, err = report.binary(field); err != nil {
		return nil, err
	}

	q, qField := raw.TPMQuote, "tpm_quote"
	if q == nil {
		q, qField = raw.Quote, "quote"
	}
	if q == nil {
		return nil, attest.Malformed("tpm_quote", "missing", nil)
	}
	if ev.Quote, err = decodeQuote(q, qField); err != nil {
		return nil, err
	}

	if raw.VCEK != nil {
		if ev.VCEK, err = raw.VCEK.binary("vcek"); err != nil {
			return nil, err
		}
	}
	if raw.TDQuote != nil {
		if ev.TDQuote, err = raw.TDQuote.binary("td_quote"); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

func decodeQuote(q *rawQuote, field string) (tpm.Quote, error) {
	msg, err := q.Message.hex(field + ".message")
	if err != nil {
		return tpm.Quote{}, err
	}
	sig, err := q.Signature.hex(field + ".signature")
	if err != nil {
		return tpm.Quote{}, err
	}
	values := make([][]byte, len(q.PCRs))
	for i := range q.PCRs {
		if values[i], err = q.PCRs[i].hex(fmt.Sprintf("%s.pcrs[%d]", field, i)); err != nil {
			return tpm.Quote{}, err
		}
	}
	bank, err := tpm.PCRBankFromValues(values)
	if err != nil {
		return tpm.Quote{}, err
	}
	return tpm.Quote{Message: msg, Signature: tpm.RSASSA(crypto.SHA256, sig), PCRs: bank}, nil
}

// detect reports whether data is a JSON object with an HCL report and a
// vTPM quote, in either encoding.
func detect(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return false
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(data, &keys) != nil {
		return false
	}
	_, hcl := keys["hcl_report"]
	_, report := keys["report"]
	_, tpmQuote := keys["tpm_quote"]
	_, quote := keys["quote"]
	return (hcl || report) && (tpmQuote || quote)
}
