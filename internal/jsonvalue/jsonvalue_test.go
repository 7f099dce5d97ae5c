package jsonvalue

import (
	"encoding/json"
	"testing"
)

func TestLookup(t *testing.T) {
	doc := map[string]any{
		"a":    map[string]any{"b": map[string]any{"c": "deep"}, "null": nil},
		"list": []any{map[string]any{"x": 1}},
		"text": "leaf",
	}
	tests := []struct {
		name  string
		path  []string
		want  any
		found bool
	}{
		{"empty path", nil, nil, true},
		{"top member", []string{"text"}, "leaf", true},
		{"nested member", []string{"a", "b", "c"}, "deep", true},
		{"null member", []string{"a", "null"}, nil, true},
		{"missing member", []string{"a", "missing"}, nil, false},
		{"through a string", []string{"text", "x"}, nil, false},
		{"through an array", []string{"list", "0"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := Lookup(doc, tt.path...)
			if found != tt.found {
				t.Fatalf("found = %v, want %v", found, tt.found)
			}
			if tt.path == nil {
				return
			}
			if got != tt.want {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	obj, err := DecodeObject([]byte(`{"n": 18446744073709551615, "f": 1e3}`))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := obj["n"].(json.Number); !ok || n.String() != "18446744073709551615" {
		t.Errorf("n = %#v, want json.Number 18446744073709551615", obj["n"])
	}
	if f, ok := obj["f"].(json.Number); !ok || f.String() != "1e3" {
		t.Errorf("f = %#v, want json.Number 1e3", obj["f"])
	}

	for name, input := range map[string]string{
		"empty":          ``,
		"truncated":      `{"n": 1`,
		"null":           `null`,
		"array":          `[{}]`,
		"string":         `"x"`,
		"trailing value": `{} {}`,
		"trailing comma": `{},`,
	} {
		if _, err := DecodeObject([]byte(input)); err == nil {
			t.Errorf("%s: %q accepted", name, input)
		}
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, seed := range []string{`{"a":{"b":[1,2.5,"c",null,true]}}`, `{}`, `null`, `{"a":1} x`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := DecodeObject(data)
		if err == nil && obj == nil {
			t.Fatal("nil object without an error")
		}
	})
}
