package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// decodeJSONBody decodes body, which must be exactly one JSON object, into
// v, a pointer to a struct whose fields are all strings, numbers or times.
// Unlike a plain json.Decoder it rejects a member name given twice, a name
// that matches a field only without regard to case, and data after the
// object. encoding/json would keep the last of two names and match
// "Value" to the field "value", so such a body could mean something other
// than what the client's own JSON library wrote.
//
// It returns an *http.MaxBytesError from the body unchanged, and every
// other error with the reason only, for the caller to wrap.
func decodeJSONBody(body io.Reader, v any) error {
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}

	names := jsonFieldNames(v)
	return jsonvalue.WalkMembers(data, func(name string) error {
		if !names[name] {
			return fmt.Errorf("unknown member %q: member names are case-sensitive, so use one of %s", name, strings.Join(slices.Sorted(maps.Keys(names)), ", "))
		}
		return nil
	})
}

// jsonFieldNames returns the JSON member names of the struct that v points
// to.
func jsonFieldNames(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		if name != "-" {
			names[name] = true
		}
	}
	return names
}
