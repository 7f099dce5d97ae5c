package workload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cloister-dev/cloister/internal/printable"
)

// DecodeMatrix reads the JSON object {key: [[numbers], ...]} from r, with at
// most rows arrays of at most cols numbers each. It stops at the first
// number past a bound, so that a body of short numbers such as "0,"
// cannot allocate more than the bounds allow. It rejects other keys,
// repeated keys and values that are not numbers.
func DecodeMatrix(r io.Reader, key string, rows, cols int) ([][]float64, error) {
	var out [][]float64
	err := DecodeMember(r, key, func(dec *json.Decoder) error {
		return decodeArray(dec, rows, func(i int) error {
			row, err := decodeNumbers(dec, cols)
			if err != nil {
				return fmt.Errorf("array %d: %w", i+1, err)
			}
			out = append(out, row)
			return nil
		})
	})
	return out, err
}

// DecodeVector reads the JSON object {key: [numbers]} from r, with at most
// max numbers, under the same rules as DecodeMatrix.
func DecodeVector(r io.Reader, key string, max int) ([]float64, error) {
	var out []float64
	err := DecodeMember(r, key, func(dec *json.Decoder) error {
		var err error
		out, err = decodeNumbers(dec, max)
		return err
	})
	return out, err
}

// DecodeMember reads from r the JSON object whose only member is key, and
// decodes that member's value with value. It rejects other and repeated
// members, a missing key and anything after the object. Its errors name
// the member and the JSON type of a wrong token, never a value, which may
// be a party's data.
func DecodeMember(r io.Reader, key string, value func(*json.Decoder) error) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok != key {
			return fmt.Errorf("unknown member %s; the body has one member, %q", printable.Quote(fmt.Sprint(tok), 64), key)
		}
		if seen {
			return fmt.Errorf("member %q appears twice", key)
		}
		seen = true
		if err := value(dec); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	if !seen {
		return fmt.Errorf("member %q is missing", key)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	// A body with more after the object would be read differently by a
	// parser that takes the last value, so it is rejected. The error does
	// not quote what follows, which may be a party's data.
	if _, err := dec.Token(); err != io.EOF {
		return errors.New(`the body continues after the closing "}"; send exactly one JSON object`)
	}
	return nil
}

// decodeNumbers reads an array of at most max numbers.
func decodeNumbers(dec *json.Decoder, max int) ([]float64, error) {
	var out []float64
	err := decodeArray(dec, max, func(int) error {
		tok, err := dec.Token()
		if ute := (*json.UnmarshalTypeError)(nil); errors.As(err, &ute) {
			// encoding/json's message quotes the number, a party's data.
			return fmt.Errorf("element %d is a number outside the range of float64", len(out)+1)
		}
		if err != nil {
			return err
		}
		f, ok := tok.(float64)
		if !ok {
			return fmt.Errorf("element %d is %s, not a number", len(out)+1, TokenKind(tok))
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// decodeArray reads an array and calls element for each of at most max
// elements, failing at the first one past max.
func decodeArray(dec *json.Decoder, max int, element func(i int) error) error {
	if err := expectDelim(dec, '['); err != nil {
		return err
	}
	for i := 0; dec.More(); i++ {
		if i == max {
			return fmt.Errorf("the array has more than %d elements", max)
		}
		if err := element(i); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("the body ends where %q is expected", want)
	}
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("found %s where %q is expected", TokenKind(tok), want)
	}
	return nil
}

// TokenKind names the JSON type of tok for an error message. The value
// itself is left out, because it is a party's data.
func TokenKind(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", tok.String())
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("a %T", tok)
}
