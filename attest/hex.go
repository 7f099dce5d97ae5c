package attest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Hex is a byte string that prints and marshals as lowercase hexadecimal
// without a prefix, the form vendors and the evidence corpus use.
type Hex []byte

// String returns the lowercase hexadecimal form of h.
func (h Hex) String() string { return hex.EncodeToString(h) }

// MarshalJSON encodes h as a JSON string of lowercase hexadecimal. Hex
// digits need no escaping, so the string is written directly.
func (h Hex) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2*len(h)+2)
	b = append(b, '"')
	b = hex.AppendEncode(b, h)
	return append(b, '"'), nil
}

// UnmarshalJSON decodes a JSON string of hexadecimal, in either case.
func (h *Hex) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("invalid hex string %q: %w", s, err)
	}
	*h = b
	return nil
}

// ParseHex decodes s, which may carry a "0x" prefix, as hexadecimal. The error
// names the value so that a command-line flag can be corrected.
func ParseHex(s string) (Hex, error) {
	if len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("invalid hex value %q: %v", s, err)
	}
	return b, nil
}
