package workload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

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
	return ExpectEnd(dec, r, "body", "send exactly one JSON object")
}

// ExpectEnd checks that r, which dec reads, ends after the JSON object
// that dec decoded last. Input with more after the object would be read
// differently by a parser that takes the last value, so ExpectEnd rejects
// it with an error that names the input and ends with fix. The error does
// not quote what follows, which may be a party's data.
//
// When more follows, ExpectEnd reads r to its end, so that input over the
// limit of an http.MaxBytesReader is reported with the reader's
// *http.MaxBytesError (see IsBodyTooLarge) wherever the excess lies. The
// caller bounds r, as http.MaxBytesReader or a byte slice does.
func ExpectEnd(dec *json.Decoder, r io.Reader, input, fix string) error {
	_, err := dec.Token()
	if err == io.EOF {
		return nil
	}
	var syntaxErr *json.SyntaxError
	if err != nil && !errors.As(err, &syntaxErr) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf(`reading the %s after the closing "}": %w`, input, err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf(`reading the %s after the closing "}": %w`, input, err)
	}
	return fmt.Errorf(`the %s continues after the closing "}"; %s`, input, fix)
}

// ReadFileMax reads the file at path if it has at most limit bytes. It
// checks the size before reading, and reads through a limited reader in
// case the file grows meanwhile. A larger file gets an error that names
// the file by description and path, its size and the limit, and ends with
// fix. The other errors wrap the os error, so errors.Is(err, os.ErrNotExist)
// holds for a missing file.
func ReadFileMax(path, description string, limit int64, fix string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the %s: %w", description, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading the %s: %w", description, err)
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("the %s %s is %d bytes, larger than the limit of %d bytes; %s", description, path, info.Size(), limit, fix)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the %s %s: %w", description, path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("the %s %s grew to more than the limit of %d bytes while it was read; %s", description, path, limit, fix)
	}
	return data, nil
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
