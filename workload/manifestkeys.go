package workload

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
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
	var caseErr error
	err := jsonvalue.WalkMembers(raw, func(key string) error {
		if field := caseVariantOf(key, names); field != "" {
			caseErr = fmt.Errorf("invalid %s manifest: key %q differs from the field %q only in case; write %q, because other JSON readers do not match keys without regard to case", kind, key, field, field)
			return caseErr
		}
		return nil
	})

	var dup *jsonvalue.DuplicateMemberError
	switch {
	case caseErr != nil:
		return caseErr
	case errors.As(err, &dup):
		return fmt.Errorf("invalid %s manifest: key %q appears twice in one object; keep one, because JSON readers differ in which they use", kind, dup.Name)
	case err != nil:
		return fmt.Errorf("invalid manifest JSON: %w", err)
	}
	return nil
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
