package modelserve

import (
	"strings"
	"testing"
)

func TestParseManifestRejects(t *testing.T) {
	model := `"model_sha256":"` + strings.Repeat("ab", 32) + `"`
	party := `"parties":[{"name":"a","key_sha256":"` + strings.Repeat("01", 32) + `"}]`
	tests := []struct{ name, raw, want string }{
		{"not JSON", `{`, "invalid manifest JSON"},
		{"no model digest", `{"key_resource":"a/b/c",` + party + `}`, "model_sha256 is missing"},
		{"key path", `{` + model + `,"key_resource":"a/b",` + party + `}`, "repository/type/tag"},
		{"key segment", `{` + model + `,"key_resource":"a/b/c d",` + party + `}`, "segment"},
		{"no parties", `{` + model + `,"key_resource":"a/b/c","parties":[]}`, "parties is empty"},
		{"batch", `{` + model + `,"key_resource":"a/b/c",` + party + `,"max_batch":-1}`, "max_batch"},
		{"unknown field", `{` + model + `,"key_resource":"a/b/c",` + party + `,"debug":true}`, "unknown field"},
		{"party name", `{` + model + `,"key_resource":"a/b/c","parties":[{"name":"A","key_sha256":"` + strings.Repeat("01", 32) + `"}]}`, "party name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseManifest([]byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseManifest() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// FuzzParseManifest checks that no input makes ParseManifest panic and
// that an accepted manifest validates.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"name":"x","model_sha256":"` + strings.Repeat("ab", 32) + `","key_resource":"models/xor/key","parties":[{"name":"a","key_sha256":"` + strings.Repeat("01", 32) + `"}],"max_batch":4}`))
	f.Add([]byte(`{"model_sha256":"zz"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, _, err := ParseManifest(raw)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Errorf("ParseManifest accepted a manifest that fails Validate: %v", err)
		}
		if m.maxBatch() < 1 {
			t.Errorf("max batch %d", m.maxBatch())
		}
	})
}
