package workload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// checkManifestKeys rejects a manifest whose objects repeat a key, or use
// a key that differs only in case from a field of M. encoding/json
// accepts both: it keeps the last of repeated keys and matches field
// names without regard to case. Other JSON readers, such as the tools the
// parties review the manifest with, may then see other values than the
// workload enforces, such as min_group_size 5 beside MIN_GROUP_SIZE 1.
//
// Keys are compared with the JSON names of every field of M at any depth,
// which is exact for manifests, whose field names are unique lower-case
// words. Unknown keys are left to the decoder's DisallowUnknownFields.
func checkManifestKeys[M any](raw []byte, kind string) error {
	names := fieldNames(reflect.TypeFor[M](), map[string]bool{})
	dec := json.NewDecoder(bytes.NewReader(raw))

	// Each open object keeps its keys so far, and whether the next token
	// is a key; an open array keeps nil.
	type frame struct {
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("invalid manifest JSON: %w", err)
		}

		if n := len(stack); n > 0 && stack[n-1].expectKey {
			if key, ok := tok.(string); ok {
				top := stack[n-1]
				if top.keys[key] {
					return fmt.Errorf("invalid %s manifest: key %q appears twice in one object; keep one, because JSON readers differ in which they use", kind, key)
				}
				if field := caseVariantOf(key, names); field != "" {
					return fmt.Errorf("invalid %s manifest: key %q differs from the field %q only in case; write %q, because other JSON readers do not match keys without regard to case", kind, key, field, field)
				}
				top.keys[key] = true
				top.expectKey = false
				continue
			}
		}

		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// caseVariantOf returns the field name that key matches only under Unicode
// case folding, as encoding/json matches names (so that the Kelvin sign
// matches k), or "" when key is a field name or matches none.
func caseVariantOf(key string, names map[string]bool) string {
	if names[key] {
		return ""
	}
	for name := range names {
		if strings.EqualFold(name, key) {
			return name
		}
	}
	return ""
}

// fieldNames adds to names the JSON names of the fields of t and of the
// structs that t contains, and returns names.
func fieldNames(t reflect.Type, names map[string]bool) map[string]bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return fieldNames(t.Elem(), names)
	case reflect.Struct:
	default:
		return names
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !names[name] {
			names[name] = true
			fieldNames(f.Type, names)
		}
	}
	return names
}
