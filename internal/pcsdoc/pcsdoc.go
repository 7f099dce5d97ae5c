// Package pcsdoc reads the signed JSON documents that Intel PCS serves (TCB
// Info and QE Identity) and verifies the raw ECDSA P-256 signatures that
// they and DCAP quotes carry. It imports nothing from the project, so both
// collateral and tee/dcap can use it although tee/dcap imports collateral.
package pcsdoc

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// SignatureSize is the size of a raw r||s ECDSA P-256 signature in bytes.
const SignatureSize = 64

// Document is an Intel PCS body split into its signed object and its
// signature.
type Document struct {
	// Body is the exact bytes of the signed object member as they appear
	// in the body, which is what the signature covers.
	Body []byte
	// Signature is the raw r||s signature, decoded from hexadecimal.
	Signature []byte
}

// Error is an error of Split or SignedObject. Member is "signature" when
// the signature member is at fault and "" when the document is.
type Error struct {
	Member string
	Reason string
	Err    error
}

func (e *Error) Error() string {
	msg := e.Reason
	if e.Member != "" {
		msg = e.Member + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Split reads the signed object and signature of an Intel PCS body, such as
// {"tcbInfo":{…},"signature":"…"}. members names the members that may contain
// the signed object, and the first one present is taken.
func Split(raw []byte, members ...string) (*Document, error) {
	top, body, err := signedObject(raw, members)
	if err != nil {
		return nil, err
	}

	var sigHex string
	if err := json.Unmarshal(top["signature"], &sigHex); err != nil {
		return nil, &Error{Member: "signature", Reason: "missing or not a string", Err: err}
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return nil, &Error{Member: "signature", Reason: fmt.Sprintf("not %d bytes of hexadecimal", SignatureSize), Err: err}
	}
	if len(sig) != SignatureSize {
		return nil, &Error{Member: "signature", Reason: fmt.Sprintf("is %d bytes, not %d bytes of hexadecimal", len(sig), SignatureSize)}
	}
	return &Document{Body: body, Signature: sig}, nil
}

// SignedObject returns the exact bytes of the first of members present in
// an Intel PCS body, without reading its signature.
func SignedObject(raw []byte, members ...string) ([]byte, error) {
	_, body, err := signedObject(raw, members)
	return body, err
}

// signedObject returns the top-level members of raw and the value of the
// first of members present.
func signedObject(raw []byte, members []string) (map[string]json.RawMessage, []byte, error) {
	if len(members) == 0 {
		return nil, nil, &Error{Reason: "no signed object member to look for"}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, nil, &Error{Reason: "invalid JSON", Err: err}
	}
	for _, member := range members {
		if v, ok := top[member]; ok {
			return top, v, nil
		}
	}
	quoted := make([]string, len(members))
	for i, member := range members {
		quoted[i] = strconv.Quote(member)
	}
	last := len(quoted) - 1
	names := quoted[last]
	if last > 0 {
		names = strings.Join(quoted[:last], ", ") + " or " + names
	}
	return nil, nil, &Error{Reason: "no " + names + " object"}
}

// VerifyRawECDSA reports whether sig is a valid raw r||s ECDSA signature by
// pub over the SHA-256 digest of message.
func VerifyRawECDSA(pub *ecdsa.PublicKey, message, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	digest := sha256.Sum256(message)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, digest[:], r, s)
}
