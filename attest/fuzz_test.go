package attest

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseHex parses hexadecimal flag values and JSON strings. An
// accepted value prints back as its lowercase digits, and its JSON form
// decodes to the same bytes.
func FuzzParseHex(f *testing.F) {
	for _, s := range []string{"", "0x", "0XAbCd", "00ff", "abc", "0xg0", "\"00\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHex(s)
		if err == nil {
			digits := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
			if h.String() != strings.ToLower(digits) {
				t.Errorf("ParseHex(%q).String() = %q, want %q", s, h, strings.ToLower(digits))
			}
			data, err := json.Marshal(h)
			if err != nil {
				t.Fatalf("marshal %q: %v", s, err)
			}
			var back Hex
			if err := json.Unmarshal(data, &back); err != nil || back.String() != h.String() {
				t.Errorf("JSON round trip of %q = %q, %v", s, back, err)
			}
		}

		var fromJSON Hex
		fromJSON.UnmarshalJSON([]byte(s))
	})
}
