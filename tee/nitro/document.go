package nitro

import (
	"fmt"
	"sort"
	"time"

	"github.com/fxamacker/cbor/v2"
	cose "github.com/veraison/go-cose"

	"github.com/cloister-dev/cloister/attest"
	internalcose "github.com/cloister-dev/cloister/internal/cose"
)

// Limits of the attestation document, from the CDDL and the syntactic
// validation rules of AWS's "Nitro Enclaves Attestation Process"
// (aws-nitro-enclaves-nsm-api, docs/attestation_process.md).
const (
	maxPayloadSize   = 16384
	maxCertSize      = 1024
	maxPCRs          = 32
	maxPublicKeySize = 1024
	// maxUserDataSize bounds user_data and nonce. The CDDL allows 0..1024
	// bytes, but the validation rules of the same document give 0..512.
	// Production enclaves emit 1024-byte values, so the CDDL limit is the
	// one enforced.
	maxUserDataSize = 1024
	// signatureSize is an ES384 signature: r and s of 48 bytes each.
	signatureSize = 96
	// digestSHA384 is the only digest function AWS defines for PCRs.
	digestSHA384 = "SHA384"
	// pcrSizeSHA384 is the size of a PCR under the SHA384 digest.
	pcrSizeSHA384 = 48
)

// CBOR major types, the top three bits of an item's first byte.
const (
	majorUint  = 0
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
)

// cborNull is the encoding of the CBOR simple value null.
const cborNull = 0xf6

// strictDecMode decodes the document payload: duplicate map keys,
// indefinite-length items and tags are rejected, and Unmarshal rejects bytes
// after the first item.
var strictDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 1024,
		MaxMapPairs:      64,
	}.DecMode()
	if err != nil {
		panic(err) // static options
	}
	return dm
}()

// Document is a decoded AWS Nitro Enclaves attestation document: the
// COSE_Sign1 envelope and its payload. Nothing in it is verified until
// Verify checks the signature and the certificate chain.
type Document struct {
	// Tagged is true when the COSE_Sign1 message carries CBOR tag 18.
	Tagged bool
	// Message is the decoded COSE_Sign1 message.
	Message *cose.Sign1Message

	ModuleID  string
	Digest    string
	Timestamp time.Time
	// PCRs maps each locked PCR index to its value.
	PCRs        map[uint]attest.Hex
	Certificate []byte
	// CABundle lists the issuing CA certificates, DER, root first as AWS
	// ships them.
	CABundle [][]byte
	// PublicKey, UserData and Nonce are nil when the field is absent or
	// null; HasUserData and HasNonce tell an empty value from an absent one.
	PublicKey   []byte
	UserData    []byte
	Nonce       []byte
	HasUserData bool
	HasNonce    bool
}

// ParseDocument decodes a COSE_Sign1 attestation document, tagged or
// untagged, and checks every field against AWS's specification. It verifies
// no signature.
func ParseDocument(data []byte) (*Document, error) {
	msg, tagged, err := decodeSign1(data)
	if err != nil {
		return nil, err
	}
	doc, err := parsePayload(msg.Payload)
	if err != nil {
		return nil, err
	}
	doc.Message = msg
	doc.Tagged = tagged
	return doc, nil
}

// decodeSign1 decodes the COSE_Sign1 envelope and checks the parts AWS fixes:
// the ES384 algorithm, an empty unprotected header, the payload size and a
// 96-byte signature.
func decodeSign1(data []byte) (*cose.Sign1Message, bool, error) {
	if len(data) == 0 {
		return nil, false, attest.Malformed("COSE_Sign1", "empty input", nil)
	}
	if err := strictDecModeWithTags.Wellformed(data); err != nil {
		return nil, false, attest.Malformed("COSE_Sign1", "invalid CBOR", err)
	}
	msg := &cose.Sign1Message{}
	tagged := data[0] == 0xd2
	var err error
	if tagged {
		err = msg.UnmarshalCBOR(data)
	} else {
		err = (*cose.UntaggedSign1Message)(msg).UnmarshalCBOR(data)
	}
	if err != nil {
		return nil, false, attest.Malformed("COSE_Sign1", "not a COSE_Sign1 message (a CBOR array of four items, optionally with tag 18)", err)
	}

	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return nil, false, attest.Malformed("COSE_Sign1.protected", "no algorithm in the protected header", err)
	}
	if alg != cose.AlgorithmES384 {
		return nil, false, attest.Errorf(attest.ErrUnsupported, "COSE_Sign1.protected.alg",
			"algorithm %v is not ES384, the only algorithm of Nitro attestation documents", alg)
	}
	if err := internalcose.CheckCritical(msg.Headers.Protected); err != nil {
		return nil, false, attest.Malformed("COSE_Sign1.protected.crit", "critical header parameter that Nitro documents do not use", err)
	}
	if len(msg.Headers.Unprotected) != 0 {
		return nil, false, attest.Malformed("COSE_Sign1.unprotected",
			fmt.Sprintf("unprotected header has %d entries; Nitro documents carry an empty map", len(msg.Headers.Unprotected)), nil)
	}
	if n := len(msg.Payload); n == 0 || n > maxPayloadSize {
		return nil, false, attest.Malformed("COSE_Sign1.payload",
			fmt.Sprintf("payload is %d bytes, outside 1..%d", n, maxPayloadSize), nil)
	}
	if n := len(msg.Signature); n != signatureSize {
		return nil, false, attest.Malformed("COSE_Sign1.signature",
			fmt.Sprintf("signature is %d bytes; an ES384 signature is %d", n, signatureSize), nil)
	}
	return msg, tagged, nil
}

// strictDecModeWithTags checks the envelope's well-formedness: the same
// limits as strictDecMode, but tag 18 is allowed.
var strictDecModeWithTags = func() cbor.DecMode {
	opts := strictDecMode.DecOptions()
	opts.TagsMd = cbor.TagsAllowed
	dm, err := opts.DecMode()
	if err != nil {
		panic(err) // static options
	}
	return dm
}()

// parsePayload decodes the attestation document map. Every required field
// must be present, no unknown field may appear, and every value must have
// the CBOR type and size the specification gives.
func parsePayload(payload []byte) (*Document, error) {
	var fields map[string]cbor.RawMessage
	if err := strictDecMode.Unmarshal(payload, &fields); err != nil {
		return nil, attest.Malformed("payload", "attestation document is not a CBOR map with text keys, or breaks the strict encoding rules (duplicate key, indefinite length, trailing bytes)", err)
	}
	for name := range fields {
		if !knownField(name) {
			return nil, attest.Malformed("payload."+name, "unknown field in the attestation document", nil)
		}
	}
	for _, name := range []string{"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"} {
		if raw, ok := fields[name]; !ok || isNull(raw) {
			return nil, attest.Malformed(name, "required field is missing or null", nil)
		}
	}

	doc := &Document{}
	var err error
	if doc.ModuleID, err = decodeText(fields["module_id"], "module_id"); err != nil {
		return nil, err
	}
	if doc.ModuleID == "" {
		return nil, attest.Malformed("module_id", "module ID is empty", nil)
	}
	if doc.Digest, err = decodeText(fields["digest"], "digest"); err != nil {
		return nil, err
	}
	if doc.Digest != digestSHA384 {
		return nil, attest.Malformed("digest", fmt.Sprintf("digest %q is not %q", doc.Digest, digestSHA384), nil)
	}
	if doc.Timestamp, err = decodeTimestamp(fields["timestamp"]); err != nil {
		return nil, err
	}
	if doc.PCRs, err = decodePCRs(fields["pcrs"]); err != nil {
		return nil, err
	}
	if doc.Certificate, err = decodeBytes(fields["certificate"], "certificate", 1, maxCertSize); err != nil {
		return nil, err
	}
	if doc.CABundle, err = decodeCABundle(fields["cabundle"]); err != nil {
		return nil, err
	}
	if err := decodeOptional(fields, &doc.PublicKey, nil, "public_key", 1, maxPublicKeySize); err != nil {
		return nil, err
	}
	if err := decodeOptional(fields, &doc.UserData, &doc.HasUserData, "user_data", 0, maxUserDataSize); err != nil {
		return nil, err
	}
	if err := decodeOptional(fields, &doc.Nonce, &doc.HasNonce, "nonce", 0, maxUserDataSize); err != nil {
		return nil, err
	}
	return doc, nil
}

func knownField(name string) bool {
	switch name {
	case "module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle", "public_key", "user_data", "nonce":
		return true
	}
	return false
}

func isNull(raw cbor.RawMessage) bool { return len(raw) == 1 && raw[0] == cborNull }

func majorType(raw cbor.RawMessage) byte {
	if len(raw) == 0 {
		return 0xff
	}
	return raw[0] >> 5
}

var majorNames = map[byte]string{0: "unsigned integer", 1: "negative integer", 2: "byte string", 3: "text string",
	4: "array", 5: "map", 6: "tagged item", 7: "simple value or float"}

func typeError(field string, raw cbor.RawMessage, want byte) error {
	return attest.Malformed(field, fmt.Sprintf("value is a CBOR %s; want a %s", majorNames[majorType(raw)], majorNames[want]), nil)
}

func decodeText(raw cbor.RawMessage, field string) (string, error) {
	if majorType(raw) != majorText {
		return "", typeError(field, raw, majorText)
	}
	var s string
	if err := strictDecMode.Unmarshal(raw, &s); err != nil {
		return "", attest.Malformed(field, "invalid text string", err)
	}
	return s, nil
}

func decodeBytes(raw cbor.RawMessage, field string, minLen, maxLen int) ([]byte, error) {
	if majorType(raw) != majorBytes {
		return nil, typeError(field, raw, majorBytes)
	}
	var b []byte
	if err := strictDecMode.Unmarshal(raw, &b); err != nil {
		return nil, attest.Malformed(field, "invalid byte string", err)
	}
	if len(b) < minLen || len(b) > maxLen {
		return nil, attest.Malformed(field, fmt.Sprintf("%d bytes, outside %d..%d", len(b), minLen, maxLen), nil)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func decodeTimestamp(raw cbor.RawMessage) (time.Time, error) {
	if majorType(raw) != majorUint {
		return time.Time{}, typeError("timestamp", raw, majorUint)
	}
	var ms uint64
	if err := strictDecMode.Unmarshal(raw, &ms); err != nil {
		return time.Time{}, attest.Malformed("timestamp", "invalid unsigned integer", err)
	}
	// The upper bound keeps the conversion to time.Time exact; it is far
	// beyond any real document (year 292278994).
	if ms == 0 || ms > 1<<62 {
		return time.Time{}, attest.Malformed("timestamp", fmt.Sprintf("timestamp %d ms is not a positive time since the UNIX epoch", ms), nil)
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

func decodePCRs(raw cbor.RawMessage) (map[uint]attest.Hex, error) {
	if majorType(raw) != majorMap {
		return nil, typeError("pcrs", raw, majorMap)
	}
	// A key of any type but an unsigned integer fails to decode here.
	var entries map[uint64]cbor.RawMessage
	if err := strictDecMode.Unmarshal(raw, &entries); err != nil {
		return nil, attest.Malformed("pcrs", "invalid PCR map: keys must be unsigned integers and values byte strings", err)
	}
	if len(entries) == 0 || len(entries) > maxPCRs {
		return nil, attest.Malformed("pcrs", fmt.Sprintf("%d PCRs, outside 1..%d", len(entries), maxPCRs), nil)
	}
	pcrs := make(map[uint]attest.Hex, len(entries))
	for index, v := range entries {
		if index >= maxPCRs {
			return nil, attest.Malformed("pcrs", fmt.Sprintf("PCR index %d is outside 0..31", index), nil)
		}
		field := fmt.Sprintf("pcrs[%d]", index)
		value, err := decodeBytes(v, field, 0, 64)
		if err != nil {
			return nil, err
		}
		// The CDDL allows 32, 48 and 64-byte PCRs, one size per digest
		// function. SHA384, the only digest AWS defines, gives 48 bytes.
		if n := len(value); n != pcrSizeSHA384 {
			return nil, attest.Malformed(field, fmt.Sprintf("PCR value is %d bytes, but digest %s gives %d-byte PCRs", n, digestSHA384, pcrSizeSHA384), nil)
		}
		pcrs[uint(index)] = value
	}
	return pcrs, nil
}

func decodeCABundle(raw cbor.RawMessage) ([][]byte, error) {
	if majorType(raw) != majorArray {
		return nil, typeError("cabundle", raw, majorArray)
	}
	var items []cbor.RawMessage
	if err := strictDecMode.Unmarshal(raw, &items); err != nil {
		return nil, attest.Malformed("cabundle", "invalid array", err)
	}
	if len(items) == 0 {
		return nil, attest.Malformed("cabundle", "CA bundle is empty", nil)
	}
	bundle := make([][]byte, len(items))
	for i, item := range items {
		der, err := decodeBytes(item, fmt.Sprintf("cabundle[%d]", i), 1, maxCertSize)
		if err != nil {
			return nil, err
		}
		bundle[i] = der
	}
	return bundle, nil
}

// decodeOptional decodes an optional byte-string field that may also be
// null. present, when not nil, is set when the field holds bytes.
func decodeOptional(fields map[string]cbor.RawMessage, out *[]byte, present *bool, field string, minLen, maxLen int) error {
	raw, ok := fields[field]
	if !ok || isNull(raw) {
		return nil
	}
	b, err := decodeBytes(raw, field, minLen, maxLen)
	if err != nil {
		return err
	}
	*out = b
	if present != nil {
		*present = true
	}
	return nil
}

// PCRIndexes returns the indexes of the document's PCRs in ascending order.
func (d *Document) PCRIndexes() []uint {
	idx := make([]uint, 0, len(d.PCRs))
	for i := range d.PCRs {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	return idx
}
