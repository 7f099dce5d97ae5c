// Package jsonpath looks up members in decoded JSON values, the maps and
// slices that encoding/json produces for an any.
package jsonpath

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
