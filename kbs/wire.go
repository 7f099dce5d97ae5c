package kbs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
	"github.com/cloister-dev/cloister/internal/printable"
)

// ProtocolVersion is the only Request version the server accepts and the
// one the client sends.
const ProtocolVersion = "0.4.0"

// TEE names the KBS spells for the evidence kinds (the kbs-types crate,
// version 0.15.0). The server keeps the tee of /auth for the session and
// picks the verifier with it.
var knownTEEs = map[string]bool{
	"az-snp-vtpm": true, "az-tdx-vtpm": true, "nvidia": true, "sgx": true, "snp": true,
	"tdx": true, "cca": true, "csv": true, "se": true, "hygondcu": true, "tpm": true,
	"sample": true, "sampledevice": true,
}

// Request is the body of POST /kbs/v0/auth.
type Request struct {
	Version string `json:"version"`
	TEE     string `json:"tee"`
	// ExtraParams is any JSON value; current guests send an object with
	// supported-hash-algorithms, older ones the empty string.
	ExtraParams json.RawMessage `json:"extra-params"`
}

// ParseRequest decodes an /auth body and checks that every member is
// present and that tee is a name the protocol defines. It does not check
// the version, which the server reports with its own message. Member names
// match exactly, a repeated member is an error and unknown members are
// ignored, as in Trustee's Request type.
func ParseRequest(data []byte) (*Request, error) {
	if json.Valid(data) && jsonKind(data) == "object" {
		members, err := exactMembers(data, "", "version", "tee", "extra-params")
		if err != nil {
			return nil, fmt.Errorf("invalid Request: %w", err)
		}
		data = objectText(members)
	}
	var r Request
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("invalid Request JSON: %w", err)
	}
	if r.Version == "" {
		return nil, errors.New(`invalid Request: missing member version; send "version": "` + ProtocolVersion + `"`)
	}
	if !knownTEEs[r.TEE] {
		return nil, fmt.Errorf(`invalid Request: unknown tee %s; send a tee that the KBS protocol defines, such as "snp" or "tdx"`,
			printable.Quote(r.TEE, maxEchoedValue))
	}
	if len(r.ExtraParams) == 0 {
		return nil, errors.New(`invalid Request: missing member extra-params; send "extra-params": "" or an object with supported-hash-algorithms`)
	}
	return &r, nil
}

// Challenge is the body of a successful /auth response.
type Challenge struct {
	// Nonce is 32 random bytes in standard base64 with padding. The
	// client treats it as an opaque string.
	Nonce string `json:"nonce"`
	// ExtraParams is "" (use SHA-384) or an object with
	// selected-hash-algorithm. Guests reject a Challenge without it.
	ExtraParams json.RawMessage `json:"extra-params"`
}

// check rejects a Challenge without a nonce or without extra-params, as
// guests do. The nonce must also not be empty, because it is the one value
// that ties the evidence to this session.
func (c *Challenge) check() error {
	if c.Nonce == "" {
		return errors.New("invalid Challenge: missing member nonce; the KBS must send the session's nonce as a non-empty string")
	}
	if len(c.ExtraParams) == 0 {
		return errors.New(`invalid Challenge: missing member extra-params; the KBS must send "extra-params", such as "" for the default hash`)
	}
	return nil
}

// Attestation is the body of POST /kbs/v0/attest.
type Attestation struct {
	// InitData is nil when the guest sent null or nothing.
	InitData    *InitData   `json:"init-data"`
	RuntimeData RuntimeData `json:"runtime-data"`
	TEEEvidence TEEEvidence `json:"tee-evidence"`
}

// ParseAttestation decodes an /attest body into an Attestation as
// Trustee's serde types read it, and checks that the members the server
// needs are present. Unknown members are ignored, which the protocol
// requires. Member names match exactly, and a repeated member of the body,
// of runtime-data, tee-pubkey, tee-evidence or init-data is an error,
// because JSON readers disagree on which copy counts. Otherwise each
// member decodes as json.Unmarshal decodes it, so a null runtime-data or
// tee-evidence decodes to nothing.
//
// The body is checked as JSON once, and the primary evidence is not copied:
// TEEEvidence.PrimaryEvidence is a sub-slice of data, so data must not
// change while the Attestation is in use.
func ParseAttestation(data []byte) (*Attestation, error) {
	a, err := decodeAttestation(data)
	if err != nil {
		return nil, err
	}
	if a.RuntimeData.Nonce == "" {
		return nil, errors.New("invalid Attestation: missing runtime-data.nonce; send the nonce of the /auth challenge as a string")
	}
	if a.RuntimeData.TEEPubKey.Kty == "" {
		return nil, errors.New("invalid Attestation: missing runtime-data.tee-pubkey; send the TEE public key as an EC or RSA JWK")
	}
	if len(a.TEEEvidence.PrimaryEvidence) == 0 || bytes.Equal(a.TEEEvidence.PrimaryEvidence, []byte("null")) {
		return nil, errors.New("invalid Attestation: missing tee-evidence.primary_evidence; put the TEE's evidence in it")
	}
	return a, nil
}

// decodeAttestation decodes data into an Attestation. It validates data
// once, with json.Valid, where json.Unmarshal scans the body twice. Then
// it decodes the small members init-data and runtime-data with
// encoding/json, after it kept only their members with exact names. It
// indexes the large tee-evidence with jsonvalue, which trusts that its
// input is valid JSON.
func decodeAttestation(data []byte) (*Attestation, error) {
	if !json.Valid(data) {
		// This second decoding only produces encoding/json's syntax error,
		// which names the offset.
		err := json.Unmarshal(data, new(Attestation))
		return nil, fmt.Errorf("invalid Attestation JSON: %w; send the /attest body as one JSON object", err)
	}

	var a Attestation
	switch kind := jsonKind(data); kind {
	case "null":
		// json.Unmarshal leaves the Attestation empty, so the member
		// checks reject it.
		return &a, nil
	case "object":
	default:
		return nil, fmt.Errorf("invalid Attestation JSON: the body is %s, not an object; send {\"runtime-data\", \"tee-evidence\"} as one JSON object", kind)
	}
	members, err := exactMembers(data, "", "init-data", "runtime-data", "tee-evidence")
	if err != nil {
		return nil, fmt.Errorf("invalid Attestation: %w", err)
	}
	for _, m := range members {
		switch m.name {
		case "init-data":
			text, err := exactObject(m.value, "init-data.", "format", "body")
			if err != nil {
				return nil, fmt.Errorf("invalid Attestation: %w", err)
			}
			if err := json.Unmarshal(text, &a.InitData); err != nil {
				return nil, fmt.Errorf("invalid Attestation: init-data: %w; init-data must be an object {\"format\", \"body\"} of strings", err)
			}
		case "runtime-data":
			text, err := exactRuntimeData(m.value)
			if err != nil {
				return nil, fmt.Errorf("invalid Attestation: %w", err)
			}
			if err := json.Unmarshal(text, &a.RuntimeData); err != nil {
				return nil, fmt.Errorf("invalid Attestation: runtime-data: %w; send runtime-data as {\"nonce\": a string, \"tee-pubkey\": an EC or RSA JWK}", err)
			}
		case "tee-evidence":
			if err := a.TEEEvidence.decode(m.value); err != nil {
				return nil, err
			}
		}
	}
	return &a, nil
}

// jsonMember is one member of a JSON object: its name and its value's
// JSON text.
type jsonMember struct {
	name  string
	value []byte
}

// exactMembers returns the members of the valid JSON object text whose
// names are exactly one of names, in the order of names. Other members are
// left out, and a name that occurs twice is an error whose message names
// the member as path+name.
func exactMembers(text []byte, path string, names ...string) ([]jsonMember, error) {
	obj, err := jsonvalue.ParseEncodedObject(text)
	if err != nil {
		return nil, err
	}
	members := make([]jsonMember, 0, len(names))
	for _, name := range names {
		value, err := onlyMember(obj, path, name)
		if err != nil {
			return nil, err
		}
		if value != nil {
			members = append(members, jsonMember{name: name, value: value})
		}
	}
	return members, nil
}

// onlyMember returns the value text of the member name of obj, or nil when
// obj lacks it. A name that occurs twice is an error whose message names
// the member as path+name.
func onlyMember(obj *jsonvalue.Object, path, name string) ([]byte, error) {
	var text []byte
	for value := range obj.All(name) {
		if text != nil {
			return nil, fmt.Errorf("member %s%s occurs more than once; send each member once", path, name)
		}
		text = value
	}
	return text, nil
}

// objectText returns the JSON object text of members. Each name must be
// a JSON string without escapes.
func objectText(members []jsonMember) []byte {
	size := 2
	for _, m := range members {
		size += len(m.name) + len(m.value) + 4
	}
	text := make([]byte, 0, size)
	text = append(text, '{')
	for i, m := range members {
		if i > 0 {
			text = append(text, ',')
		}
		text = append(text, '"')
		text = append(text, m.name...)
		text = append(text, '"', ':')
		text = append(text, m.value...)
	}
	return append(text, '}')
}

// exactObject returns text, a valid JSON value, with only the members
// that exactMembers keeps when it is an object, and unchanged otherwise,
// so that encoding/json reports a value of another type.
func exactObject(text []byte, path string, names ...string) ([]byte, error) {
	if jsonKind(text) != "object" {
		return text, nil
	}
	members, err := exactMembers(text, path, names...)
	if err != nil {
		return nil, err
	}
	return objectText(members), nil
}

// teePubKeyMembers are the members of an EC or an RSA tee-pubkey.
var teePubKeyMembers = []string{"kty", "crv", "alg", "x", "y", "n", "e"}

// exactRuntimeData returns text, a runtime-data value, as exactObject
// does, with the tee-pubkey in it reduced to its members with exact names
// too.
func exactRuntimeData(text []byte) ([]byte, error) {
	if jsonKind(text) != "object" {
		return text, nil
	}
	members, err := exactMembers(text, "runtime-data.", "nonce", "tee-pubkey")
	if err != nil {
		return nil, err
	}
	for i, m := range members {
		if m.name != "tee-pubkey" {
			continue
		}
		if members[i].value, err = exactObject(m.value, "runtime-data.tee-pubkey.", teePubKeyMembers...); err != nil {
			return nil, err
		}
	}
	return objectText(members), nil
}

// decode decodes text, the valid JSON value of the tee-evidence member,
// into e: null leaves e as it is, and the members of an object with exact
// names set the fields they name. PrimaryEvidence becomes a sub-slice of
// text.
func (e *TEEEvidence) decode(text []byte) error {
	switch kind := jsonKind(text); kind {
	case "null":
		return nil
	case "object":
	default:
		return fmt.Errorf("invalid Attestation: tee-evidence is %s, not an object; send {\"primary_evidence\", \"additional_evidence\"}", kind)
	}
	members, err := exactMembers(text, "tee-evidence.", "primary_evidence", "additional_evidence")
	if err != nil {
		return fmt.Errorf("invalid Attestation: %w", err)
	}
	for _, m := range members {
		switch m.name {
		case "primary_evidence":
			// json.RawMessage takes any value, null included.
			e.PrimaryEvidence = m.value
		case "additional_evidence":
			if err := json.Unmarshal(m.value, &e.AdditionalEvidence); err != nil {
				return fmt.Errorf("invalid Attestation: tee-evidence.additional_evidence: %w; additional_evidence must be a string", err)
			}
		}
	}
	return nil
}

// jsonKind returns the kind of the valid JSON value text by its first byte:
// "object", "null", or a phrase such as "a string" for the other kinds.
func jsonKind(text []byte) string {
	text = bytes.TrimLeft(text, " \t\r\n")
	if len(text) == 0 {
		return "empty"
	}
	switch text[0] {
	case '{':
		return "object"
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// InitData is the init-data document a guest was launched with.
type InitData struct {
	// Format is "toml"; the built-in service accepts nothing else.
	Format string `json:"format"`
	// Body is the TOML text, hashed byte for byte as received.
	Body string `json:"body"`
}

// RuntimeData binds the TEE key to the session nonce.
type RuntimeData struct {
	Nonce     string    `json:"nonce"`
	TEEPubKey TEEPubKey `json:"tee-pubkey"`
}

// TEEEvidence is the composite evidence of protocol version 0.3.0 and
// later.
type TEEEvidence struct {
	// PrimaryEvidence is the evidence of the session's TEE, in the JSON form
	// of that TEE's guest attester.
	PrimaryEvidence json.RawMessage `json:"primary_evidence"`
	// AdditionalEvidence is "" or the JSON text of an object mapping TEE
	// names to device evidence. The exact string is hashed into the
	// primary runtime data, so it is kept as received.
	AdditionalEvidence string `json:"additional_evidence"`
}

// TEEPubKey is the JWK a guest sends as tee-pubkey: EC (kty, crv, alg, x,
// y) or RSA (kty, alg, n, e). Its JSON form has exactly the members of its
// kty, in the order the guest writes them.
type TEEPubKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	Alg string `json:"alg"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// UnmarshalJSON accepts exactly the members of the key's kty, as Trustee's
// typed form does, and rejects a kty other than EC or RSA.
func (k *TEEPubKey) UnmarshalJSON(data []byte) error {
	type plain TEEPubKey
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	switch p.Kty {
	case "EC":
		if missing := missingMembers("crv", p.Crv, "alg", p.Alg, "x", p.X, "y", p.Y); missing != "" {
			return fmt.Errorf("invalid EC tee-pubkey: missing or empty %s; an EC key needs crv, alg, x and y", missing)
		}
		p.N, p.E = "", ""
	case "RSA":
		if missing := missingMembers("alg", p.Alg, "n", p.N, "e", p.E); missing != "" {
			return fmt.Errorf("invalid RSA tee-pubkey: missing or empty %s; an RSA key needs alg, n and e", missing)
		}
		p.Crv, p.X, p.Y = "", "", ""
	default:
		return fmt.Errorf("invalid tee-pubkey: kty %s is not EC or RSA", printable.Quote(p.Kty, maxEchoedValue))
	}
	*k = TEEPubKey(p)
	return nil
}

// missingMembers returns the comma-separated names of the members whose
// value is empty. The pairs argument alternates names and values.
func missingMembers(pairs ...string) string {
	var names []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			names = append(names, pairs[i])
		}
	}
	return strings.Join(names, ", ")
}

// Response is a flattened JWE as the resource endpoint returns it. Every
// member is base64url without padding. AAD is never set by this server;
// kbs-types keeps a received aad member as its raw string.
type Response struct {
	Protected    string `json:"protected"`
	EncryptedKey string `json:"encrypted_key"`
	IV           string `json:"iv"`
	AAD          string `json:"aad,omitempty"`
	Ciphertext   string `json:"ciphertext"`
	Tag          string `json:"tag"`
}

// ParseResponse decodes a JWE response and checks that the members a guest
// requires are present. The ciphertext of an empty secret is empty.
func ParseResponse(data []byte) (*Response, error) {
	var r Response
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("invalid JWE response JSON: %w", err)
	}
	for _, m := range []struct{ name, value string }{
		{"protected", r.Protected}, {"encrypted_key", r.EncryptedKey}, {"iv", r.IV}, {"tag", r.Tag},
	} {
		if m.value == "" {
			return nil, fmt.Errorf("invalid JWE response: missing member %s", m.name)
		}
	}
	return &r, nil
}

// AttestationToken is the body of a successful /attest response.
type AttestationToken struct {
	Token string `json:"token"`
}
