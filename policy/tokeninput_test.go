package policy

import (
	"context"
	"testing"

	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// allowJSONModules are resource policies of every kind AllowJSON treats
// differently: cacheable ones that read token paths, resource or query
// members, ones that read the token as a whole or at a variable path, and
// Trustee's dialect.
var allowJSONModules = []Module{
	DefaultResource(),
	{Name: "by-repository", Text: "package p\n\ndefault allow := false\n\nallow if {\n\tinput.token.submods.cpu0[\"ear.status\"] == \"affirming\"\n\tinput.resource.repository == \"default\"\n}\n"},
	{Name: "by-query", Text: "package p\n\ndefault allow := false\n\nallow if {\n\tinput.token.submods.cpu0[\"cloister.key-claims\"].tee == \"snp\"\n\tinput.query.version[0] == \"2\"\n}\n"},
	{Name: "whole-token", Text: "package p\n\ndefault allow := false\n\nallow if object.get(input.token, \"iss\", \"\") == \"cloister\"\n"},
	{Name: "any-submodule", Text: "package p\n\ndefault allow := false\n\nallow if {\n\tsome name\n\tinput.token.submods[name][\"ear.status\"] == \"affirming\"\n}\n"},
	{Name: "trustee-default", Text: trusteeDefaultPolicy},
}

// allowJSONTokens are claim sets as a token carries them, with the
// spellings that text lookups must treat as encoding/json does.
var allowJSONTokens = []string{
	`{"iss":"cloister","submods":{"cpu0":{"ear.status":"affirming","cloister.key-claims":{"tee":"snp"}}}}`,
	`{"iss":"cloister","submods":{"cpu0":{"ear.status":"warning","cloister.key-claims":{"tee":"snp"}}}}`,
	`{"iss":"other","submods":{"gpu0":{"ear.status":"affirming"}}}`,
	`{"submods":{"cpu0":{"ear.status":"contraindicated","ear.status":"affirming"}}}`,
	`{"submods":{"cpu0":{"ear.st\u0061tus":"affirming","cloister.key-claims":{"tee":"tdx"}}}}`,
	` {"submods": {"cpu0": {"ear.status": "affirming"}}, "n": 18446744073709551615} `,
	`{"submods":"cpu0"}`,
	`{}`,
}

// AllowJSON and allowObject decide as Allow does with the decoded claims,
// for every module, token, resource and query, on one engine whose
// decisions all three share and on a fresh engine.
func TestAllowJSONMatchesAllow(t *testing.T) {
	ctx := context.Background()
	shared := NewEngine()
	resources := []Resource{
		{Path: "default/key/1", Repository: "default", Type: "key", Tag: "1"},
		{Path: "other/key/1", Repository: "other", Type: "key", Tag: "1"},
	}
	queries := []map[string][]string{nil, {"version": {"2"}}}
	for _, m := range allowJSONModules {
		for _, text := range allowJSONTokens {
			claims, err := jsonvalue.DecodeObject([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range resources {
				for _, query := range queries {
					want, err := NewEngine().Allow(ctx, m, claims, res, query)
					if err != nil {
						t.Fatalf("%s: Allow: %v", m.Name, err)
					}
					for _, e := range []*Engine{shared, NewEngine()} {
						got, err := e.AllowJSON(ctx, m, []byte(text), res, query)
						if err != nil {
							t.Fatalf("%s: AllowJSON: %v", m.Name, err)
						}
						if got != want {
							t.Errorf("%s, token %s, resource %s, query %v: AllowJSON = %v, Allow = %v",
								m.Name, text, res.Path, query, got, want)
						}

						token, err := jsonvalue.ParseEncodedObject([]byte(text))
						if err != nil {
							t.Fatal(err)
						}
						got, _, _, err = e.allowObject(ctx, m, token, res, query)
						if err != nil {
							t.Fatalf("%s: allowObject: %v", m.Name, err)
						}
						if got != want {
							t.Errorf("%s, token %s, resource %s, query %v: allowObject = %v, Allow = %v",
								m.Name, text, res.Path, query, got, want)
						}
					}
				}
			}
		}
	}
}

func TestAllowJSONRejectsNonObjects(t *testing.T) {
	for _, text := range []string{``, ` `, `null`, `[]`, `"{}"`, `1`} {
		for _, m := range []Module{DefaultResource(), {Name: "trustee-default", Text: trusteeDefaultPolicy}} {
			got, err := NewEngine().AllowJSON(context.Background(), m, []byte(text), Resource{Path: "a/b/c"}, nil)
			if err == nil || got {
				t.Errorf("%s: AllowJSON(%q) = %v, %v; want an error", m.Name, text, got, err)
			}
		}
	}
}

// allowObject leaves the claim text it reads unchanged, because the token
// verifier's cache shares that text with later requests.
func TestAllowObjectKeepsText(t *testing.T) {
	const text = `{"iss":"cloister","submods":{"cpu0":{"ear.status":"affirming","cloister.key-claims":{"tee":"snp"}}}}`
	for _, m := range allowJSONModules {
		data := []byte(text)
		token, err := jsonvalue.ParseEncodedObject(data)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := NewEngine().allowObject(context.Background(), m, token, Resource{Path: "default/key/1", Repository: "default", Type: "key", Tag: "1"}, nil); err != nil {
			t.Fatalf("%s: allowObject: %v", m.Name, err)
		}
		if string(data) != text {
			t.Errorf("%s: claim text changed to %s", m.Name, data)
		}
	}
}

func TestAllowObjectRejectsNil(t *testing.T) {
	for _, m := range []Module{DefaultResource(), {Name: "trustee-default", Text: trusteeDefaultPolicy}} {
		got, _, _, err := NewEngine().allowObject(context.Background(), m, nil, Resource{Path: "a/b/c"}, nil)
		if err == nil || got {
			t.Errorf("%s: allowObject(nil) = %v, %v; want an error", m.Name, got, err)
		}
	}
}

// FuzzAllowJSON compares AllowJSON and allowObject with Allow on the
// decoded claims for every module and any valid JSON text. Invalid text,
// which their callers must not pass, must still not panic.
func FuzzAllowJSON(f *testing.F) {
	for _, text := range allowJSONTokens {
		f.Add([]byte(text), "default")
	}
	f.Add([]byte(`{"a":1} x`), "other")
	f.Add([]byte(`{"submods":{"cpu0":{"ear.status":"affirming"`), "default")
	shared := NewEngine()
	reference := NewEngine()
	f.Fuzz(func(t *testing.T, text []byte, repository string) {
		res := Resource{Path: repository + "/key/1", Repository: repository, Type: "key", Tag: "1"}
		claims, decodeErr := jsonvalue.DecodeObject(text)
		for _, m := range allowJSONModules {
			got, err := shared.AllowJSON(context.Background(), m, text, res, nil)
			if decodeErr != nil {
				continue
			}
			reference.forgetDecisions()
			want, wantErr := reference.Allow(context.Background(), m, claims, res, nil)
			if (err != nil) != (wantErr != nil) || got != want {
				t.Fatalf("%s: AllowJSON(%q) = %v, %v; Allow = %v, %v", m.Name, text, got, err, want, wantErr)
			}

			token, err := jsonvalue.ParseEncodedObject(text)
			if err != nil {
				t.Fatalf("ParseEncodedObject(%q): %v, but DecodeObject accepts it", text, err)
			}
			got, _, _, err = shared.allowObject(context.Background(), m, token, res, nil)
			if (err != nil) != (wantErr != nil) || got != want {
				t.Fatalf("%s: allowObject(%q) = %v, %v; Allow = %v, %v", m.Name, text, got, err, want, wantErr)
			}
		}
	})
}
