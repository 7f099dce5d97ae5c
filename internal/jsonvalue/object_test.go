package jsonvalue

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestObjectLookup(t *testing.T) {
	const doc = `{
		"tee": "tdx",
		"tcb": {"status": "OutOfDate", "advisory_ids": ["INTEL-SA-00001"], "n": 18446744073709551615},
		"text": "}{\"]\\",
		"null": null,
		"list": [{"a": 1}, "]"],
		"\u0074ee": "snp",
		"odd\"name": true,
		"empty": {},
		"last": 1e3
	}`
	tests := []struct {
		name  string
		path  []string
		want  string
		found bool
	}{
		{"escaped duplicate wins", []string{"tee"}, `"snp"`, true},
		{"nested string", []string{"tcb", "status"}, `"OutOfDate"`, true},
		{"nested array", []string{"tcb", "advisory_ids"}, `["INTEL-SA-00001"]`, true},
		{"large number", []string{"tcb", "n"}, `18446744073709551615`, true},
		{"whole object", []string{"tcb"}, `{"status": "OutOfDate", "advisory_ids": ["INTEL-SA-00001"], "n": 18446744073709551615}`, true},
		{"string with brackets", []string{"text"}, `"}{\"]\\"`, true},
		{"null", []string{"null"}, `null`, true},
		{"through null", []string{"null", "x"}, ``, false},
		{"through a string", []string{"text", "x"}, ``, false},
		{"through an array", []string{"list", "a"}, ``, false},
		{"escaped quote in name", []string{`odd"name`}, `true`, true},
		{"empty object", []string{"empty"}, `{}`, true},
		{"missing in empty object", []string{"empty", "x"}, ``, false},
		{"last member", []string{"last"}, `1e3`, true},
		{"missing", []string{"nonce"}, ``, false},
		{"missing nested", []string{"tcb", "date"}, ``, false},
	}
	obj, err := ParseObject([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := obj.Lookup(tt.path)
			if found != tt.found {
				t.Fatalf("found = %v, want %v", found, tt.found)
			}
			if string(got) != tt.want {
				t.Errorf("value = %s, want %s", got, tt.want)
			}
		})
	}
}

// A member name with invalid UTF-8 matches the name encoding/json decodes
// it to, with U+FFFD in place of each invalid byte.
func TestObjectInvalidUTF8Name(t *testing.T) {
	obj, err := ParseObject([]byte("{\"t\xffe\": 1}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, found := obj.Get("t\xffe"); found {
		t.Error("the raw invalid name matched")
	}
	if v, found := obj.Get("t\uFFFDe"); !found || string(v) != "1" {
		t.Errorf("Get(t\\uFFFDe) = %s, %v; want 1, true", v, found)
	}
}

// ParseObject accepts exactly what DecodeObject accepts.
func TestParseObjectRejects(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":           ``,
		"space":           ` `,
		"truncated":       `{"tee":"snp"`,
		"null":            `null`,
		"array":           `[{}]`,
		"string":          `"{}"`,
		"trailing object": `{"tee":"snp"},"config":{}`,
		"two objects":     `{} {}`,
		"bad escape":      `{"t\x":1}`,
		"control char":    "{\"t\x01\":1}",
		"unquoted name":   `{tee:1}`,
	} {
		if _, err := ParseObject([]byte(raw)); err == nil {
			t.Errorf("%s: %q accepted", name, raw)
		}
	}
	if _, err := ParseObject([]byte(" \n{\"tee\":\"snp\"}\t ")); err != nil {
		t.Errorf("object with surrounding space: %v", err)
	}
}

func TestObjectWithout(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		names []string
		want  string
	}{
		{"middle", `{"a":1,"chain":[{"x":"]"}],"b":"}"}`, []string{"chain"}, `{"a":1,"b":"}"}`},
		{"first and last", `{"chain":[],"a":{"chain":1},"collateral":null}`, []string{"chain", "collateral"}, `{"a":{"chain":1}}`},
		{"every member", `{"chain":1}`, []string{"chain"}, `{}`},
		{"none named", `{"a":1}`, []string{"chain"}, `{"a":1}`},
		{"empty", `{}`, []string{"chain"}, `{}`},
		{"escaped name", `{"ch\u0061in":1,"a":2}`, []string{"chain"}, `{"a":2}`},
		{"duplicates", `{"chain":1,"a":2,"chain":3}`, []string{"chain"}, `{"a":2}`},
		{"space", ` { "a" : 1 , "chain" : 2 } `, []string{"chain"}, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := ParseObject([]byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(obj.Without(tt.names...)); got != tt.want {
				t.Errorf("Without(%q) = %s, want %s", tt.names, got, tt.want)
			}
		})
	}
}

// All yields every member of a name, escaped names too, in their order.
func TestObjectAll(t *testing.T) {
	obj, err := ParseObject([]byte(`{"a":1,"b":2,"\u0061":null,"A":3,"a":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for text := range obj.All("a") {
		got = append(got, string(text))
	}
	if want := []string{"1", "null", `"x"`}; !slices.Equal(got, want) {
		t.Errorf("All(a) = %q, want %q", got, want)
	}
	for range obj.All("a") {
		break
	}
	for text := range obj.All("missing") {
		t.Errorf("All(missing) yielded %s", text)
	}
}

// AllFold yields the members that encoding/json would decode into a struct
// field named "key": equal under Unicode case folding, escapes decoded,
// with the Kelvin sign U+212A folding to k.
func TestObjectAllFold(t *testing.T) {
	const doc = `{"key": 1, "KEY": 2, "other": 0, "\u212aey": 3, "k\u0065y": 4, "kéy": 0, "keys": 0, "Key": 5}`
	obj, err := ParseObject([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for v := range obj.AllFold("key") {
		got = append(got, string(v))
	}
	want := []string{"1", "2", "3", "4", "5"}
	if !slices.Equal(got, want) {
		t.Errorf("AllFold(key) = %v, want %v", got, want)
	}

	// encoding/json gives the field the last of those members.
	var s struct {
		Key int `json:"key"`
	}
	if err := json.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	if s.Key != 5 {
		t.Errorf("encoding/json decoded key = %d, want 5", s.Key)
	}
}
