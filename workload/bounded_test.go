package workload

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDecodeVector(t *testing.T) {
	tests := []struct {
		body string
		want []float64
		err  string
	}{
		{`{"update": [1, 2.5, -3]}`, []float64{1, 2.5, -3}, ""},
		{`{"update": []}`, nil, ""},
		{`{"update": [1, 2, 3, 4]}`, nil, "more than 3 elements"},
		{`{"update": [1, "2"]}`, nil, "element 2 is a string, not a number"},
		{`{"update": [1, -9e99999]}`, nil, "element 2 is a number outside the range of float64"},
		{`{"update": [1], "extra": 1}`, nil, `unknown member "extra"`},
		{`{"update": [1], "update": [2]}`, nil, `member "update" appears twice`},
		{`{}`, nil, `member "update" is missing`},
		{`{"update": 1}`, nil, `found a number where "[" is expected`},
		{`{"update": [1, 2`, nil, `the body ends where "]" is expected`},
		{``, nil, `the body ends where "{" is expected`},
		{`{"update": [1]} garbage`, nil, `the body continues after the closing "}"`},
		{`{"update": [1]}{"update": [2]}`, nil, `the body continues after the closing "}"`},
		{`{"update": [1]}]`, nil, `the body continues after the closing "}"`},
		{`{"update": [1]} "cut`, nil, `the body continues after the closing "}"`},
		{"{\"update\": [1]}\n\t ", []float64{1}, ""},
	}
	for _, tt := range tests {
		got, err := DecodeVector(strings.NewReader(tt.body), "update", 3)
		if tt.err == "" {
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("DecodeVector(%s) = %v, %v; want %v", tt.body, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("DecodeVector(%s) error = %v, want one containing %q", tt.body, err, tt.err)
		}
	}
}

func TestDecodeMatrix(t *testing.T) {
	got, err := DecodeMatrix(strings.NewReader(`{"inputs": [[1, 2], [3, 4]]}`), "inputs", 2, 2)
	if err != nil || len(got) != 2 || !slices.Equal(got[1], []float64{3, 4}) {
		t.Fatalf("DecodeMatrix = %v, %v", got, err)
	}
	for body, want := range map[string]string{
		`{"inputs": [[1], [2], [3]]}`: "more than 2 elements",
		`{"inputs": [[1, 2, 3]]}`:     "array 1: the array has more than 2 elements",
		`{"inputs": [1]}`:             `array 1: found a number where "[" is expected`,
	} {
		if _, err := DecodeMatrix(strings.NewReader(body), "inputs", 2, 2); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeMatrix(%s) error = %v, want one containing %q", body, err, want)
		}
	}
}

// FuzzDecodeMatrix checks that no body makes DecodeMatrix panic or return
// more than its bounds.
func FuzzDecodeMatrix(f *testing.F) {
	f.Add([]byte(`{"inputs": [[1, 2], [3, 4]]}`))
	f.Add([]byte(`{"inputs": [[0,0,0,0,0,0,0,0,0]], "inputs": []}`))
	f.Add([]byte(`{"inputs": [[1e400]]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeMatrix(strings.NewReader(string(body)), "inputs", 3, 4)
		if err != nil {
			return
		}
		if len(got) > 3 {
			t.Fatalf("DecodeMatrix returned %d arrays, more than 3", len(got))
		}
		for _, row := range got {
			if len(row) > 4 {
				t.Fatalf("DecodeMatrix returned an array of %d numbers, more than 4", len(row))
			}
		}
	})
}

// Errors name the JSON type of a wrong element, never its value, which is
// a party's data.
func TestDecodeVectorHidesValues(t *testing.T) {
	for _, body := range []string{`{"update": [1, "SECRET"]}`, `{"update": "SECRET"}`} {
		_, err := DecodeVector(strings.NewReader(body), "update", 3)
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("DecodeVector(%s) error = %v, want one without the value", body, err)
		}
	}
}

// A body over the limit of an http.MaxBytesReader is reported as too large
// also when the excess follows the closing "}", and data after the object
// within the limit is reported as such.
func TestDecodeMemberBodyLimit(t *testing.T) {
	const object = `{"update": [1]}`
	const limit = 64
	tests := []struct {
		name     string
		body     string
		tooLarge bool
	}{
		{"spaces past limit", object + strings.Repeat(" ", 2*limit), true},
		{"text past limit", object + " x" + strings.Repeat("y", 2*limit), true},
		{"second object past limit", object + strings.Repeat(object, 8), true},
		{"text within limit", object + " x", false},
		{"spaces within limit", object + "   ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(tt.body)), limit)
			_, err := DecodeVector(r, "update", 3)
			if got := IsBodyTooLarge(err); got != tt.tooLarge {
				t.Errorf("IsBodyTooLarge(%v) = %v, expected %v", err, got, tt.tooLarge)
			}
			trailing := strings.TrimSpace(tt.body) != object
			if !tt.tooLarge && trailing && (err == nil || !strings.Contains(err.Error(), `the body continues after the closing "}"`)) {
				t.Errorf("error %v does not name the data after the object", err)
			}
			if !tt.tooLarge && !trailing && err != nil {
				t.Errorf("error %v for a body that ends with white space", err)
			}
		})
	}
}

// ReadFileMax reads a file of at most the limit and rejects a larger one
// with its path, size, limit and fix, without reading it.
func TestReadFileMax(t *testing.T) {
	dir := t.TempDir()
	atLimit := filepath.Join(dir, "at-limit")
	if err := os.WriteFile(atLimit, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := ReadFileMax(atLimit, "test file", 10, "shorten it")
	if err != nil {
		t.Fatalf("file at the limit: %v", err)
	}
	if string(data) != "0123456789" {
		t.Errorf("read %q, expected 0123456789", data)
	}

	large := filepath.Join(dir, "large")
	f, err := os.Create(large)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file of 1 TiB: reading it whole would not finish.
	if err := f.Truncate(1 << 40); err != nil {
		t.Skipf("the file system has no sparse files: %v", err)
	}
	f.Close()
	_, err = ReadFileMax(large, "test file", 10, "shorten it")
	if err == nil {
		t.Fatal("a file over the limit was read")
	}
	for _, want := range []string{"test file " + large, "is 1099511627776 bytes", "the limit of 10 bytes", "; shorten it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	_, err = ReadFileMax(filepath.Join(dir, "missing"), "test file", 10, "shorten it")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v for a missing file does not wrap os.ErrNotExist", err)
	}
}
