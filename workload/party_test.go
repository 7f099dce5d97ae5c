package workload

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPartiesRejects(t *testing.T) {
	a := ManifestParty{Name: "bank-a", KeySHA256: Digest{1}}
	b := ManifestParty{Name: "bank-b", KeySHA256: Digest{2}}
	cases := []struct {
		name    string
		parties []ManifestParty
		want    []string
	}{
		{"empty", nil, []string{"parties is empty"}},
		{"invalid name", []ManifestParty{{Name: "Bank A", KeySHA256: Digest{1}}}, []string{`party name "Bank A"`}},
		{"name twice", []ManifestParty{a, {Name: "bank-a", KeySHA256: Digest{3}}}, []string{`party "bank-a" is listed twice`}},
		{"no key", []ManifestParty{a, {Name: "bank-b"}}, []string{`party "bank-b" has no key_sha256`}},
		{"shared key", []ManifestParty{a, {Name: "bank-b", KeySHA256: a.KeySHA256}}, []string{"same key", "of another party", `"bank-a"`, a.KeySHA256.String(), "of its own"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckParties(tc.parties)
			if err == nil {
				t.Fatal("CheckParties accepted the list")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if err := CheckParties([]ManifestParty{a, b}); err != nil {
		t.Errorf("CheckParties of two distinct parties: %v", err)
	}
}

func TestCheckPartyNames(t *testing.T) {
	parties := []ManifestParty{{Name: "bank-a", KeySHA256: Digest{1}}}
	if err := CheckPartyNames("recipient", []string{"bank-a"}, parties); err != nil {
		t.Errorf("a listed party was rejected: %v", err)
	}
	err := CheckPartyNames("recipient", []string{"bank-a", "bank-c"}, parties)
	if err == nil || !strings.Contains(err.Error(), `recipient "bank-c" is not a party`) {
		t.Errorf("CheckPartyNames = %v, want an error naming recipient bank-c", err)
	}
}

func TestServerPartiesKeepsKeys(t *testing.T) {
	got := ServerParties([]ManifestParty{{Name: "bank-a", KeySHA256: Digest{1}}})
	if len(got) != 1 || got[0] != (Party{Name: "bank-a", KeyHash: Digest{1}}) {
		t.Errorf("ServerParties = %v", got)
	}
}

// validatedManifest is a manifest type for DecodeManifest.
type validatedManifest struct {
	Name string `json:"name"`
}

func (m *validatedManifest) Validate() error {
	if m.Name == "" {
		return errors.New("invalid test manifest: name is missing")
	}
	return nil
}

func TestDecodeManifest(t *testing.T) {
	m, d, err := DecodeManifest[validatedManifest]([]byte(`{"name": "x"}`), "test")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := HashManifest([]byte(`{"name":"x"}`))
	if m.Name != "x" || d != want {
		t.Errorf("DecodeManifest = %+v, %s; want name x and digest %s", m, d, want)
	}

	cases := []struct {
		raw  string
		want string
	}{
		{`{`, "invalid manifest JSON"},
		{`{"name": "x", "extra": 1}`, `invalid test manifest: json: unknown field "extra"`},
		{`{"name": ""}`, "name is missing"},
	}
	for _, tc := range cases {
		if _, _, err := DecodeManifest[validatedManifest]([]byte(tc.raw), "test"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeManifest(%s) = %v, want an error containing %q", tc.raw, err, tc.want)
		}
	}
}

type nestedManifest struct {
	Name         string `json:"name"`
	MinGroupSize int    `json:"min_group_size"`
	Tables       []struct {
		Columns []struct {
			Type string `json:"type"`
		} `json:"columns"`
	} `json:"tables"`
}

func (*nestedManifest) Validate() error { return nil }

// Keys that encoding/json would accept but other JSON readers read
// differently are rejected at any depth.
func TestDecodeManifestRejectsAmbiguousKeys(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"case variant", `{"name":"x","min_group_size":5,"MIN_GROUP_SIZE":1}`, `key "MIN_GROUP_SIZE" differs from the field "min_group_size" only in case`},
		{"case variant alone", `{"name":"x","Min_Group_Size":1}`, `key "Min_Group_Size" differs from the field "min_group_size"`},
		{"long s", "{\"name\":\"x\",\"min_group_\u017fize\":1}", `differs from the field "min_group_size" only in case`},
		{"repeated key", `{"name":"x","min_group_size":5,"min_group_size":1}`, `key "min_group_size" appears twice in one object`},
		{"nested case variant", `{"name":"x","tables":[{"columns":[{"Type":"a"}]}]}`, `key "Type" differs from the field "type"`},
		{"nested repeated key", `{"name":"x","tables":[{"columns":[{"type":"a","type":"b"}]}]}`, `key "type" appears twice`},
	}
	for _, tt := range tests {
		_, _, err := DecodeManifest[nestedManifest]([]byte(tt.raw), "test")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}

	// The same key in sibling objects is not a repetition.
	ok := `{"name":"x","min_group_size":5,"tables":[{"columns":[{"type":"a"},{"type":"b"}]},{"columns":[]}]}`
	if _, _, err := DecodeManifest[nestedManifest]([]byte(ok), "test"); err != nil {
		t.Errorf("manifest with keys repeated across sibling objects: %v", err)
	}
}
