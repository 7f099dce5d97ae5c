package policy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
	_ "github.com/cloister-dev/cloister/tee/dcap"
	_ "github.com/cloister-dev/cloister/tee/nitro"
	_ "github.com/cloister-dev/cloister/tee/snp"
)

func TestJSONObjectLookup(t *testing.T) {
	const doc = `{
		"tee": "tdx",
		"tcb": {"status": "OutOfDate", "advisory_ids": ["INTEL-SA-00001"], "n": 18446744073709551615},
		"text": "}{\"]\\",
		"null": null,
		"list": [{"a": 1}, "]"],
		"\u0074ee": "snp",
		"odd\"name": true,
		"empty": {},
		"last": 1e3
	}`
	tests := []struct {
		name  string
		path  []string
		want  string
		found bool
	}{
		{"escaped duplicate wins", []string{"tee"}, `"snp"`, true},
		{"nested string", []string{"tcb", "status"}, `"OutOfDate"`, true},
		{"nested array", []string{"tcb", "advisory_ids"}, `["INTEL-SA-00001"]`, true},
		{"large number", []string{"tcb", "n"}, `18446744073709551615`, true},
		{"whole object", []string{"tcb"}, `{"status": "OutOfDate", "advisory_ids": ["INTEL-SA-00001"], "n": 18446744073709551615}`, true},
		{"string with brackets", []string{"text"}, `"}{\"]\\"`, true},
		{"null", []string{"null"}, `null`, true},
		{"through null", []string{"null", "x"}, ``, false},
		{"through a string", []string{"text", "x"}, ``, false},
		{"through an array", []string{"list", "a"}, ``, false},
		{"escaped quote in name", []string{`odd"name`}, `true`, true},
		{"empty object", []string{"empty"}, `{}`, true},
		{"missing in empty object", []string{"empty", "x"}, ``, false},
		{"last member", []string{"last"}, `1e3`, true},
		{"missing", []string{"nonce"}, ``, false},
		{"missing nested", []string{"tcb", "date"}, ``, false},
	}
	obj, err := parseClaimsJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := obj.lookup(tt.path)
			if found != tt.found {
				t.Fatalf("found = %v, want %v", found, tt.found)
			}
			if string(got) != tt.want {
				t.Errorf("value = %s, want %s", got, tt.want)
			}
		})
	}
}

// A member name with invalid UTF-8 matches the name encoding/json decodes
// it to, with U+FFFD in place of each invalid byte.
func TestJSONObjectInvalidUTF8Name(t *testing.T) {
	obj, err := parseClaimsJSON([]byte("{\"t\xffe\": 1}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, found := obj.get("t\xffe"); found {
		t.Error("the raw invalid name matched")
	}
	if v, found := obj.get("t\uFFFDe"); !found || string(v) != "1" {
		t.Errorf("get(t\\uFFFDe) = %s, %v; want 1, true", v, found)
	}
}

// parseClaimsJSON accepts exactly what jsonvalue.DecodeObject accepts.
func TestParseClaimsJSONRejects(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":           ``,
		"space":           ` `,
		"truncated":       `{"tee":"snp"`,
		"null":            `null`,
		"array":           `[{}]`,
		"string":          `"{}"`,
		"trailing object": `{"tee":"snp"},"config":{}`,
		"two objects":     `{} {}`,
		"bad escape":      `{"t\x":1}`,
		"control char":    "{\"t\x01\":1}",
		"unquoted name":   `{tee:1}`,
	} {
		if _, err := parseClaimsJSON([]byte(raw)); err == nil {
			t.Errorf("%s: %q accepted", name, raw)
		}
	}
	if _, err := parseClaimsJSON([]byte(" \n{\"tee\":\"snp\"}\t ")); err != nil {
		t.Errorf("object with surrounding space: %v", err)
	}
}

// corpusClaims returns the JSON claims of the first accepted SEV-SNP, TDX
// and Nitro evidence of the corpus, for the TEEs the corpus has.
func corpusClaims(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, tee := range []string{"snp", "tdx", "nitro"} {
		if _, err := os.Stat(filepath.Join(corpus.Dir(t), tee)); err != nil {
			continue
		}
		c, ok := corpus.FirstAccepted(t, tee, nil)
		if !ok {
			continue
		}
		claims, err := attest.Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, c.Options(t))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		raw, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// FuzzJSONObject checks the member index against encoding/json: the same
// texts are rejected, every member path is found where jsonvalue.Lookup
// finds it, its text decodes to the value jsonvalue.DecodeObject gives,
// and decodeMembers decodes the same top-level members.
//
// The corpus seeds are a few kilobytes each, and minimizing a new input of
// that size takes minutes, so fuzz with -fuzzminimizetime 2s.
func FuzzJSONObject(f *testing.F) {
	for _, raw := range corpusClaims(f) {
		f.Add(raw)
	}
	good, err := json.Marshal(goodClaims())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, seed := range []string{
		`{"tee":"tdx","tee":"snp","tcb":{"status":"x","status":"y"}}`,
		`{"\u0074ee":"snp","a\"b":{"c\\d":[1,{"e":"}"}]}}`,
		"{\"t\xffe\":{\"x\":null}}",
		` { "tcb" : { "status" : "UpToDate" } , "n" : -1.5e-3 } `,
		`{"tcb":"UpToDate","list":[[],{},""]}`,
		`{}`, `null`, `[]`, `{"a":1} x`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkJSONObject)
}

// checkJSONObject is the check of FuzzJSONObject for one text.
func checkJSONObject(t *testing.T, data []byte) {
	want, wantErr := jsonvalue.DecodeObject(data)
	obj, err := parseClaimsJSON(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("parseClaimsJSON error %v, DecodeObject error %v", err, wantErr)
	}
	if err != nil {
		return
	}

	for _, path := range memberPaths(want, nil, 3) {
		wantValue, _ := jsonvalue.Lookup(want, path...)
		raw, found := obj.lookup(path)
		if !found {
			t.Fatalf("path %q not found", path)
		}
		got, err := jsonvalue.DecodeObject([]byte(`{"v":` + string(raw) + `}`))
		if err != nil {
			t.Fatalf("path %q: text %s does not decode: %v", path, raw, err)
		}
		if !reflect.DeepEqual(got["v"], wantValue) {
			t.Fatalf("path %q: value %#v, want %#v", path, got["v"], wantValue)
		}
		if _, found := obj.lookup(append(path, "\x00missing")); found {
			t.Fatalf("path %q: a missing member below it was found", path)
		}
	}

	var names []string
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	names = append(names, "\x00missing")
	members, err := obj.decodeMembers(names)
	if err != nil {
		t.Fatalf("decodeMembers: %v", err)
	}
	if !reflect.DeepEqual(members, want) {
		t.Fatalf("decodeMembers = %#v, want %#v", members, want)
	}
}

// memberPaths returns the paths of every object member in v up to depth
// members deep, below prefix.
func memberPaths(v any, prefix []string, depth int) [][]string {
	obj, ok := v.(map[string]any)
	if !ok || depth == 0 {
		return nil
	}
	var paths [][]string
	for name, member := range obj {
		path := append(append([]string(nil), prefix...), name)
		paths = append(paths, path)
		paths = append(paths, memberPaths(member, path, depth-1)...)
	}
	return paths
}
