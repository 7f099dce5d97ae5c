package jsonvalue

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// decoderMembers lists the names and value texts of the members of the
// JSON object data in order, as encoding/json's Decoder reads them, or
// returns false when data is not an object.
func decoderMembers(data []byte) (names []string, values [][]byte, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, nil, false
		}
		names = append(names, tok.(string))
		values = append(values, value)
	}
	return names, values, true
}

// FuzzObjectMatchesDecoder checks that the index finds the same members
// as encoding/json's Decoder, by exact name and under case folding, and
// that no input makes it panic.
func FuzzObjectMatchesDecoder(f *testing.F) {
	f.Add([]byte(`{"a":"x\\\"y","A":[1,"\\\\"],"\u0061":{"b":"\""}}`), "a")
	f.Add([]byte(`{"key": 1, "KEY": 2, "\u212aey": 3, "k\u0065y": 4}`), "key")
	f.Add([]byte(`{"init-data":null,"tee-evidence":{"primary_evidence":"\\\\"}}`), "tee-evidence")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		if obj, err := ParseEncodedObject(data); err == nil {
			for range obj.AllFold(name) {
			}
			obj.Get(name)
			obj.Lookup([]string{name, name})
		}
		if !json.Valid(data) {
			return
		}
		names, values, ok := decoderMembers(data)
		if !ok {
			return
		}
		obj, err := ParseEncodedObject(data)
		if err != nil {
			t.Fatalf("ParseEncodedObject(%q): %v", data, err)
		}

		var wantExact, wantFold [][]byte
		for i, n := range names {
			if n == name {
				wantExact = append(wantExact, values[i])
			}
			if strings.EqualFold(n, name) {
				wantFold = append(wantFold, values[i])
			}
		}
		gotExact := slices.Collect(obj.All(name))
		gotFold := slices.Collect(obj.AllFold(name))
		if !slices.EqualFunc(gotExact, wantExact, bytes.Equal) {
			t.Errorf("All(%q) on %q = %q, the Decoder reads %q", name, data, gotExact, wantExact)
		}
		if !slices.EqualFunc(gotFold, wantFold, bytes.Equal) {
			t.Errorf("AllFold(%q) on %q = %q, the Decoder reads %q", name, data, gotFold, wantFold)
		}
	})
}
