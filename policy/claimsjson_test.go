package policy

import (
	"context"
	"encoding/json"
	"maps"
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
// DecodeMembers decodes the same top-level members, and Without leaves out
// exactly the member it names.
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
	obj, err := jsonvalue.ParseObject(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("ParseObject error %v, DecodeObject error %v", err, wantErr)
	}
	if err != nil {
		return
	}

	for _, path := range memberPaths(want, nil, 3) {
		wantValue, _ := jsonvalue.Lookup(want, path...)
		raw, found := obj.Lookup(path)
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
		if _, found := obj.Lookup(append(path, "\x00missing")); found {
			t.Fatalf("path %q: a missing member below it was found", path)
		}
	}

	var names []string
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	names = append(names, "\x00missing")
	members, err := obj.DecodeMembers(names)
	if err != nil {
		t.Fatalf("DecodeMembers: %v", err)
	}
	if !reflect.DeepEqual(members, want) {
		t.Fatalf("DecodeMembers = %#v, want %#v", members, want)
	}

	for _, name := range names {
		rest, err := jsonvalue.DecodeObject(obj.Without(name))
		if err != nil {
			t.Fatalf("Without(%q): %v", name, err)
		}
		wantRest := maps.Clone(want)
		delete(wantRest, name)
		if !reflect.DeepEqual(rest, wantRest) {
			t.Fatalf("Without(%q) = %#v, want %#v", name, rest, wantRest)
		}
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
