package tpm

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	pb "github.com/google/go-tpm-tools/proto/attest"
	tpmpb "github.com/google/go-tpm-tools/proto/tpm"
	"github.com/google/go-tpm/tpm2"
	"google.golang.org/protobuf/proto"

	"github.com/cloister-dev/cloister/attest"
)

// Evidence is TPM evidence decoded from either accepted form. Nothing in
// it is verified.
type Evidence struct {
	// Form names the encoding: "go-tpm-tools attestation" or "Trustee TPM
	// evidence".
	Form string
	// AKPublic is the AK public area (TPMT_PUBLIC), when the evidence
	// carries one.
	AKPublic *tpm2.TPMTPublic
	// AKKey is the AK public key, from AKPublic or from a
	// SubjectPublicKeyInfo.
	AKKey crypto.PublicKey
	// AKCert and Intermediates are DER certificates.
	AKCert        []byte
	Intermediates [][]byte
	Quotes        []Quote
	// EventLog is the raw TCG event log (TCG PC Client, SHA-1 or crypto
	// agile), empty when absent.
	EventLog []byte
	// CanonicalEventLog is the TCG canonical event log of a
	// go-tpm-tools attestation (Confidential Space), which this package
	// does not replay.
	CanonicalEventLog []byte
	// TEEAttestation names the SEV-SNP or TDX attestation embedded in a
	// go-tpm-tools attestation, which this package does not verify, or is
	// empty.
	TEEAttestation string
}

const (
	formAttestation = "go-tpm-tools attestation"
	formTrustee     = "Trustee TPM evidence"
)

// trusteeEvidence is the JSON document of the Trustee TPM attester.
type trusteeEvidence struct {
	AKPublic string `json:"ak_public"`
	Quote    *struct {
		Message   string   `json:"message"`
		Signature string   `json:"signature"`
		PCRs      []string `json:"pcrs"`
	} `json:"tpm_quote"`
}

// maxPCRIndex bounds the PCR indexes accepted from evidence. PC Client
// TPMs have 24 PCRs, and a TPMS_PCR_SELECTION bitmap can name at most 2040.
const maxPCRIndex = 2039

// ParseEvidence decodes TPM evidence in either form.
func ParseEvidence(data []byte) (*Evidence, error) {
	if looksLikeJSON(data) {
		return parseTrustee(data)
	}
	return parseAttestation(data)
}

func looksLikeJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func parseAttestation(data []byte) (*Evidence, error) {
	var a pb.Attestation
	if err := proto.Unmarshal(data, &a); err != nil {
		return nil, attest.Malformed("attestation", "is neither a go-tpm-tools Attestation protobuf nor Trustee TPM JSON", err)
	}
	if len(a.GetAkPub()) == 0 {
		return nil, attest.Malformed("attestation.ak_pub", "missing", nil)
	}
	if len(a.GetQuotes()) == 0 {
		return nil, attest.Malformed("attestation.quotes", "the attestation contains no quote", nil)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](a.GetAkPub())
	if err != nil {
		return nil, attest.Malformed("attestation.ak_pub", "is not a TPMT_PUBLIC", err)
	}
	// tpm2.Unmarshal ignores bytes after the structure.
	if n := len(tpm2.Marshal(pub)); n != len(a.GetAkPub()) {
		return nil, attest.Malformed("attestation.ak_pub", fmt.Sprintf("%d bytes follow the %d-byte TPMT_PUBLIC", len(a.GetAkPub())-n, n), nil)
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, attest.Malformed("attestation.ak_pub", "contains no RSA or ECC public key", err)
	}
	ev := &Evidence{
		Form:          formAttestation,
		AKPublic:      pub,
		AKKey:         key,
		AKCert:        a.GetAkCert(),
		Intermediates: a.GetIntermediateCerts(),
		EventLog:      a.GetEventLog(),

		CanonicalEventLog: a.GetCanonicalEventLog(),
	}
	switch {
	case a.GetSevSnpAttestation() != nil:
		ev.TEEAttestation = "SEV-SNP"
	case a.GetTdxAttestation() != nil:
		ev.TEEAttestation = "TDX"
	}
	// go-tpm-tools makes one quote per PCR bank. Two quotes of one bank
	// could report two values for a PCR, of which the claims show one.
	quoteOfBank := map[crypto.Hash]int{}
	for i, q := range a.GetQuotes() {
		quote, err := quoteFromProto(i, q)
		if err != nil {
			return nil, err
		}
		if first, ok := quoteOfBank[quote.PCRs.Hash]; ok {
			return nil, attest.Errorf(attest.ErrMalformed, fmt.Sprintf("attestation.quotes[%d].pcrs.hash", i), "quote %d reports the %s bank that quote %d reports", i, hashName(quote.PCRs.Hash), first).
				WithFix("send one quote per PCR bank, as go-tpm-tools makes them")
		}
		quoteOfBank[quote.PCRs.Hash] = i
		ev.Quotes = append(ev.Quotes, quote)
	}
	return ev, nil
}

func quoteFromProto(i int, q *tpmpb.Quote) (Quote, error) {
	field := fmt.Sprintf("attestation.quotes[%d]", i)
	sig, err := ParseSignature(q.GetRawSig())
	if err != nil {
		return Quote{}, withField(err, field+".raw_sig")
	}
	hash, err := bankHash(tpm2.TPMIAlgHash(q.GetPcrs().GetHash()))
	if err != nil {
		return Quote{}, withField(err, field+".pcrs.hash")
	}
	bank := PCRBank{Hash: hash, Values: map[int][]byte{}}
	for idx, v := range q.GetPcrs().GetPcrs() {
		if idx > maxPCRIndex {
			return Quote{}, attest.Malformed(field+".pcrs", fmt.Sprintf("PCR index %d is beyond the largest index a PCR selection can name (%d)", idx, maxPCRIndex), nil)
		}
		bank.Values[int(idx)] = v
	}
	return Quote{Message: q.GetQuote(), Signature: sig, PCRs: bank}, nil
}

func parseTrustee(data []byte) (*Evidence, error) {
	var doc trusteeEvidence
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, attest.Malformed("evidence", "is not valid JSON", err)
	}
	if doc.AKPublic == "" {
		return nil, attest.Malformed("ak_public", "missing", nil)
	}
	if doc.Quote == nil {
		return nil, attest.Malformed("tpm_quote", "missing", nil)
	}

	spki, err := base64.StdEncoding.DecodeString(doc.AKPublic)
	if err != nil {
		return nil, attest.Malformed("ak_public", "is not standard base64", err)
	}
	key, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, attest.Malformed("ak_public", "is not a DER SubjectPublicKeyInfo", err)
	}

	msg, err := base64.StdEncoding.DecodeString(doc.Quote.Message)
	if err != nil {
		return nil, attest.Malformed("tpm_quote.message", "is not standard base64", err)
	}
	rawSig, err := base64.StdEncoding.DecodeString(doc.Quote.Signature)
	if err != nil {
		return nil, attest.Malformed("tpm_quote.signature", "is not standard base64", err)
	}
	sig, err := ParseSignature(rawSig)
	if err != nil {
		return nil, withField(err, "tpm_quote.signature")
	}

	bank, err := PCRBankFromHex(doc.Quote.PCRs)
	if err != nil {
		return nil, withField(err, "tpm_quote.pcrs")
	}
	return &Evidence{
		Form:   formTrustee,
		AKKey:  key,
		Quotes: []Quote{{Message: msg, Signature: sig, PCRs: bank}},
	}, nil
}

// PCRBankFromHex builds a PCR bank from values listed in index order
// (PCR 0 first), each in hexadecimal. The bank's hash is the one whose
// digest size the values have, and all values must have the same size.
func PCRBankFromHex(values []string) (PCRBank, error) {
	raw := make([][]byte, len(values))
	for i, s := range values {
		v, err := hex.DecodeString(s)
		if err != nil {
			return PCRBank{}, attest.Malformed("pcrs", fmt.Sprintf("PCR %d is not hexadecimal", i), err)
		}
		raw[i] = v
	}
	return PCRBankFromValues(raw)
}

// PCRBankFromValues builds a PCR bank from values listed in index order.
func PCRBankFromValues(values [][]byte) (PCRBank, error) {
	if len(values) == 0 {
		return PCRBank{}, attest.Malformed("pcrs", "no PCR value is reported", nil)
	}
	if len(values) > maxPCRIndex+1 {
		return PCRBank{}, attest.Malformed("pcrs", fmt.Sprintf("%d PCR values are more than a PCR selection can name", len(values)), nil)
	}
	var hash crypto.Hash
	switch len(values[0]) {
	case crypto.SHA1.Size():
		hash = crypto.SHA1
	case crypto.SHA256.Size():
		hash = crypto.SHA256
	case crypto.SHA384.Size():
		hash = crypto.SHA384
	case crypto.SHA512.Size():
		hash = crypto.SHA512
	default:
		return PCRBank{}, attest.Malformed("pcrs", fmt.Sprintf("PCR 0 has %d bytes, not the size of a SHA-1, SHA-256, SHA-384 or SHA-512 digest", len(values[0])), nil)
	}
	bank := PCRBank{Hash: hash, Values: map[int][]byte{}}
	for i, v := range values {
		if len(v) != hash.Size() {
			return PCRBank{}, attest.Malformed("pcrs", fmt.Sprintf("PCR %d has %d bytes but PCR 0 has %d", i, len(v), hash.Size()), nil)
		}
		bank.Values[i] = v
	}
	return bank, nil
}

// withField sets the field of an attest error that a nested decoder
// reported under a local name.
func withField(err error, field string) error {
	if e, ok := err.(*attest.Error); ok {
		copied := *e
		copied.Field = field
		return &copied
	}
	return err
}

// detectAttestation reports whether data decodes as an Attestation
// protobuf whose first quote starts with TPM_GENERATED_VALUE.
func detectAttestation(data []byte) bool {
	var a pb.Attestation
	if proto.Unmarshal(data, &a) != nil || len(a.GetAkPub()) == 0 || len(a.GetQuotes()) == 0 {
		return false
	}
	msg := a.GetQuotes()[0].GetQuote()
	return len(msg) >= 4 && binary.BigEndian.Uint32(msg) == tpmGeneratedValue
}

// detectTrustee reports whether data is a JSON object with the keys of
// Trustee TPM evidence.
func detectTrustee(data []byte) bool {
	if !looksLikeJSON(data) {
		return false
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(data, &keys) != nil {
		return false
	}
	_, ak := keys["ak_public"]
	_, quote := keys["tpm_quote"]
	return ak && quote
}
