package cose

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits of the strict decoding mode. Attestation claims sets hold a few
// dozen claims at most, with a handful of nesting levels, so these bounds
// only stop inputs built to exhaust memory.
const (
	maxNestedLevels  = 16
	maxArrayElements = 1024
	maxMapPairs      = 1024
)

var (
	strictMode cbor.DecMode
	taggedMode cbor.DecMode
)

func init() {
	opts := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  maxNestedLevels,
		MaxArrayElements: maxArrayElements,
		MaxMapPairs:      maxMapPairs,
		UTF8:             cbor.UTF8RejectInvalid,
	}
	var err error
	if strictMode, err = opts.DecMode(); err != nil {
		panic(err)
	}
	opts.TagsMd = cbor.TagsAllowed
	if taggedMode, err = opts.DecMode(); err != nil {
		panic(err)
	}
}

// Unmarshal decodes one CBOR data item into v. It rejects duplicate map
// keys, indefinite-length items, tags, invalid UTF-8 and bytes after the
// item, so that two parsers can never read different claims from the same
// token.
func Unmarshal(data []byte, v any) error {
	return strictMode.Unmarshal(data, v)
}

// UnmarshalTagged is Unmarshal with CBOR tags allowed, for envelopes such
// as the Arm CCA token collection (tag 399).
func UnmarshalTagged(data []byte, v any) error {
	return taggedMode.Unmarshal(data, v)
}

// ClaimsSet is a decoded EAT claims set whose claims are still encoded, keyed
// by their integer claim key.
type ClaimsSet map[int64]cbor.RawMessage

// DecodeClaimsSet decodes a claims set map with integer keys.
func DecodeClaimsSet(data []byte) (ClaimsSet, error) {
	var set ClaimsSet
	if err := Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("claims set: %w", err)
	}
	if set == nil {
		return nil, fmt.Errorf("claims set: not a map")
	}
	return set, nil
}

// Has reports whether the claim key is present.
func (s ClaimsSet) Has(key int64) bool {
	_, ok := s[key]
	return ok
}

// Bytes decodes a byte-string claim. It returns ok false when the claim is
// absent and an error when it has another type.
func (s ClaimsSet) Bytes(key int64) (value []byte, ok bool, err error) {
	raw, ok := s[key]
	if !ok {
		return nil, false, nil
	}
	if err := Unmarshal(raw, &value); err != nil {
		return nil, true, fmt.Errorf("claim %d: want a byte string: %w", key, err)
	}
	if value == nil {
		value = []byte{}
	}
	return value, true, nil
}

// Text decodes a text-string claim.
func (s ClaimsSet) Text(key int64) (value string, ok bool, err error) {
	raw, ok := s[key]
	if !ok {
		return "", false, nil
	}
	if err := Unmarshal(raw, &value); err != nil {
		return "", true, fmt.Errorf("claim %d: want a text string: %w", key, err)
	}
	return value, true, nil
}

// Int decodes an integer claim.
func (s ClaimsSet) Int(key int64) (value int64, ok bool, err error) {
	raw, ok := s[key]
	if !ok {
		return 0, false, nil
	}
	if err := Unmarshal(raw, &value); err != nil {
		return 0, true, fmt.Errorf("claim %d: want an integer: %w", key, err)
	}
	return value, true, nil
}

// Decode decodes the claim into v.
func (s ClaimsSet) Decode(key int64, v any) (ok bool, err error) {
	raw, ok := s[key]
	if !ok {
		return false, nil
	}
	if err := Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("claim %d: %w", key, err)
	}
	return true, nil
}
