package token

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// claimSet gives typed access to a decoded JWT claims set. Each accessor
// returns ok false when the claim is absent and an error when it has the
// wrong type, so that a present but malformed claim never reads as absent.
type claimSet map[string]any

// lookup follows a path of object member names.
func (c claimSet) lookup(path ...string) (any, bool) {
	return jsonvalue.Lookup(map[string]any(c), path...)
}

func (c claimSet) text(path ...string) (string, bool, error) {
	v, ok := c.lookup(path...)
	if !ok {
		return "", false, nil
	}
	s, isText := v.(string)
	if !isText {
		return "", true, fmt.Errorf("claim %s is %T, want a string", strings.Join(path, "."), v)
	}
	return s, true, nil
}

func (c claimSet) boolean(path ...string) (bool, bool, error) {
	v, ok := c.lookup(path...)
	if !ok {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, true, fmt.Errorf("claim %s is %T, want a boolean", strings.Join(path, "."), v)
	}
	return b, true, nil
}

func (c claimSet) integer(path ...string) (int64, bool, error) {
	v, ok := c.lookup(path...)
	if !ok {
		return 0, false, nil
	}
	n, isNumber := v.(json.Number)
	if !isNumber {
		return 0, true, fmt.Errorf("claim %s is %T, want a number", strings.Join(path, "."), v)
	}
	i, err := n.Int64()
	if err != nil {
		return 0, true, fmt.Errorf("claim %s is %s, want an integer", strings.Join(path, "."), n)
	}
	return i, true, nil
}

func (c claimSet) object(path ...string) (claimSet, bool, error) {
	v, ok := c.lookup(path...)
	if !ok {
		return nil, false, nil
	}
	m, isObject := v.(map[string]any)
	if !isObject {
		return nil, true, fmt.Errorf("claim %s is %T, want an object", strings.Join(path, "."), v)
	}
	return claimSet(m), true, nil
}

// hexBytes decodes a claim of hexadecimal text.
func (c claimSet) hexBytes(path ...string) ([]byte, bool, error) {
	s, ok, err := c.text(path...)
	if !ok || err != nil {
		return nil, ok, err
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, true, fmt.Errorf("claim %s is not hexadecimal: %w", strings.Join(path, "."), err)
	}
	return b, true, nil
}

// textList decodes a claim that is a string or an array of strings.
func (c claimSet) textList(path ...string) ([]string, bool, error) {
	v, ok := c.lookup(path...)
	if !ok {
		return nil, false, nil
	}
	switch t := v.(type) {
	case string:
		return []string{t}, true, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, isText := e.(string)
			if !isText {
				return nil, true, fmt.Errorf("claim %s contains a %T, want strings", strings.Join(path, "."), e)
			}
			out = append(out, s)
		}
		return out, true, nil
	}
	return nil, true, fmt.Errorf("claim %s is %T, want a string or an array of strings", strings.Join(path, "."), v)
}
