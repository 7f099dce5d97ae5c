package cose

import (
	"encoding/hex"
	"fmt"
	"strconv"
)

// DescribeClaims decodes a claims set, strictly, into a value that encodes
// to readable JSON for inspection: each claim is keyed by its name from
// names, or by its number, byte strings become hexadecimal text and nested
// maps get string keys. Nothing is verified.
func DescribeClaims(payload []byte, names map[int64]string) (map[string]any, error) {
	var set map[int64]any
	if err := Unmarshal(payload, &set); err != nil {
		return nil, fmt.Errorf("claims set: %w", err)
	}
	out := make(map[string]any, len(set))
	for key, value := range set {
		name, ok := names[key]
		if !ok {
			name = strconv.FormatInt(key, 10)
		}
		out[name] = describeValue(value)
	}
	return out, nil
}

// Describe describes the COSE_Sign1 envelope: whether it is tagged, its
// algorithm and the sizes of its payload and signature.
func (s *Sign1) Describe() map[string]any {
	return map[string]any{
		"tagged":          s.Tagged,
		"algorithm":       s.Algorithm.String(),
		"payload_size":    len(s.Message.Payload),
		"signature_size":  len(s.Message.Signature),
		"signature_valid": "not checked",
	}
}

func describeValue(v any) any {
	switch t := v.(type) {
	case []byte:
		return hex.EncodeToString(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = describeValue(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = describeValue(e)
		}
		return out
	}
	return v
}
