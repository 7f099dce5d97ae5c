package jsonvalue

import (
	"encoding/json"
	"strings"
	"testing"
)

// validCases are JSON texts near the edges of the grammar, valid or not.
var validCases = []string{
	``, ` `, `null`, ` null `, `nul`, `nulll`, `true`, `tru`, `false`, `falsee`, `True`,
	`0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e10`, `+1`, `1x`, `0x10`,
	`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, `"\'"`,
	`"a`, `"\"`, "\"\t\"", "\"\x00\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\xfe\"", "\"é😀\"",
	`"0123456789abcdef0123456789abcdef\"0123456789"`, `"0123456789abcdef\\\\"`, `"0123456789abcdef\\\"`,
	`{}`, `{ }`, `{"a":1}`, `{"a" : 1 , "b" : [ ] }`, `{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`, `{1:2}`,
	`[]`, `[ ]`, `[1,2]`, `[1,]`, `[,1]`, `[1 2]`, `[`, `]`, `[}`, `{]`, `[[[]]]`, `[[[]]`, `[{"a":[{}]}]`,
	`{} {}`, `{}x`, `1 2`, "\t\r\n{}\n", "\v{}", "\u00a0{}",
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	for _, data := range validCases {
		if got, want := Valid([]byte(data)), json.Valid([]byte(data)); got != want {
			t.Errorf("Valid(%q) = %v, json.Valid gives %v", data, got, want)
		}
	}
}

// Valid accepts 10000 levels of nesting and rejects 10001, as
// encoding/json does.
func TestValidNestingLimit(t *testing.T) {
	for _, depth := range []int{maxNestingDepth, maxNestingDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			closeWith := "]"
			if open != "[" {
				closeWith = "}"
			}
			data := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(closeWith, depth))
			if got, want := Valid(data), json.Valid(data); got != want {
				t.Errorf("Valid of %d levels of %s = %v, json.Valid gives %v", depth, open, got, want)
			}
		}
		data := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		if got, want := Valid(data), json.Valid(data); got != want {
			t.Errorf("Valid of %d empty arrays = %v, json.Valid gives %v", depth, got, want)
		}
	}
}

// stringEnd finds the closing quote of a valid string, however many
// backslashes precede it.
func TestStringEndBackslashes(t *testing.T) {
	for n := range 8 {
		for _, tail := range []string{``, `a`, `\"`} {
			str := `"` + strings.Repeat(`\\`, n) + tail + `"`
			data := []byte(str + `,"next"`)
			if got := stringEnd(data, 0); got != len(str) {
				t.Errorf("stringEnd(%s) = %d, want %d", data, got, len(str))
			}
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, data := range validCases {
		f.Add([]byte(data))
	}
	f.Add([]byte(`{"format":"snp","data":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","aux":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		want := json.Valid(data)
		if got := Valid(data); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid gives %v", data, got, want)
		}
		// For a valid string, stringEnd finds its end.
		if want && len(data) > 0 && data[0] == '"' {
			if end, wantEnd := stringEnd(data, 0), skipSpaceBack(data, len(data)); end != wantEnd {
				t.Fatalf("stringEnd(%q) = %d, want %d", data, end, wantEnd)
			}
		}
	})
}
