// Package jsonvalue decodes JSON objects with their numbers kept as written
// and looks up members in the maps and slices that encoding/json produces
// for an any.
package jsonvalue

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// DecodeObject decodes data, which must be exactly one JSON object, into a
// map whose numbers are json.Number, so that an integer keeps every digit
// and its notation. null, another kind of value and data after the object
// are errors.
func DecodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("null, not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return obj, nil
}

// Lookup returns the value at path, a sequence of object member names, in
// v. It reports false when a member is missing or a value on the way is
// not an object.
func Lookup(v any, path ...string) (any, bool) {
	for _, name := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[name]; !ok {
			return nil, false
		}
	}
	return v, true
}
