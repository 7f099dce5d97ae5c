package policy

import (
	"context"
	"strings"
	"testing"
)

// trusteeDefaultPolicy has the rule of Trustee's default resource policy:
// release resources unless the CPU evidence comes from the sample
// attester.
const trusteeDefaultPolicy = `package policy

default allow := false

allow if {
	data.plugin == "resource"
	not input.submods.cpu0["ear.veraison.annotated-evidence"].sample
}
`

// trusteeRequestPolicy reads the whole of Trustee's request data, in the
// older "=" assignment form that Trustee's sample policies use.
const trusteeRequestPolicy = `package policy

default allow = false

plugin = data.plugin

allow if {
	plugin == "resource"
	data["resource-path"] == ["db", "key", "1"]
	data.query.version == "2"
	input.submods.cpu0["ear.status"] == "affirming"
}
`

// cpuToken returns EAR claims whose CPU appraisal has status and annotated
// evidence under the TEE name tee.
func cpuToken(status, tee string) map[string]any {
	return map[string]any{
		"eat_profile": "tag:github.com,2024:confidential-containers/Trustee",
		"submods": map[string]any{"cpu0": map[string]any{
			"ear.status":                      status,
			"ear.veraison.annotated-evidence": map[string]any{tee: map[string]any{"measurement": "ab"}},
		}},
	}
}

func TestDetectResourceDialect(t *testing.T) {
	tests := []struct {
		name   string
		module string
		want   ResourceDialect
	}{
		{"trustee default", trusteeDefaultPolicy, TrusteeDialect},
		{"trustee request data", trusteeRequestPolicy, TrusteeDialect},
		{"trustee claims only", "package policy\n\nallow if {\n\tsome _, s in input.submods\n\ts[\"ear.status\"] == \"affirming\"\n}\n", TrusteeDialect},
		{"trustee top-level claim", "package policy\n\nallow if input.iss == \"CoCo-Attestation-Service\"\n", TrusteeDialect},
		{"trustee import", "package policy\n\nimport data.plugin\n\nallow if plugin == \"resource\"\n", TrusteeDialect},
		{"cloister default", DefaultResource().Text, CloisterDialect},
		{"cloister resource and query", "package p\n\nallow if {\n\tinput.resource.repository == \"db\"\n\tinput.query.v[0] == \"1\"\n}\n", CloisterDialect},
		{"no input", "package p\n\nallow := true\n", CloisterDialect},
		{"package named plugin", "package plugin\n\nallow := true\n", CloisterDialect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectResourceDialect(tt.module)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("dialect = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDetectResourceDialectRejects(t *testing.T) {
	tests := []struct {
		name, module string
		words        []string
	}{
		{"both inputs", "package p\n\nallow if {\n\tinput.token.iss\n\tdata.plugin == \"resource\"\n}\n", []string{`data["plugin"]`, "input.token"}},
		{"syntax error", "package p\nallow if {", []string{"parse"}},
		{"empty", "", []string{"resource policy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DetectResourceDialect(tt.module)
			if err == nil {
				t.Fatal("module accepted")
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// checkAllow evaluates m for token, res and query and compares the
// decision with want.
func checkAllow(t *testing.T, e *Engine, m Module, token map[string]any, res Resource, query map[string][]string, want bool) {
	t.Helper()
	got, err := e.Allow(context.Background(), m, token, res, query)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("allow = %v, want %v", got, want)
	}
}

func TestTrusteeDefaultPolicyAllow(t *testing.T) {
	e := NewEngine()
	m := Module{Name: "trustee-default", Text: trusteeDefaultPolicy}
	res := Resource{Path: "default/key/1", Repository: "default", Type: "key", Tag: "1"}
	tests := []struct {
		name  string
		token map[string]any
		want  bool
	}{
		{"snp evidence", cpuToken("affirming", "snp"), true},
		{"snp evidence warning", cpuToken("warning", "snp"), true},
		{"sample evidence", cpuToken("affirming", "sample"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkAllow(t, e, m, tt.token, res, nil, tt.want)
		})
	}
}

func TestTrusteePolicyRequestData(t *testing.T) {
	e := NewEngine()
	m := Module{Name: "trustee-request", Text: trusteeRequestPolicy}
	db := Resource{Path: "db/key/1", Repository: "db", Type: "key", Tag: "1"}
	tests := []struct {
		name  string
		token map[string]any
		res   Resource
		query map[string][]string
		want  bool
	}{
		{"matching request", cpuToken("affirming", "snp"), db, map[string][]string{"version": {"2"}}, true},
		{"last repeated value", cpuToken("affirming", "snp"), db, map[string][]string{"version": {"1", "2"}}, true},
		{"other query", cpuToken("affirming", "snp"), db, map[string][]string{"version": {"1"}}, false},
		{"no query", cpuToken("affirming", "snp"), db, nil, false},
		{"other path", cpuToken("affirming", "snp"), Resource{Path: "db/key/2", Repository: "db", Type: "key", Tag: "2"},
			map[string][]string{"version": {"2"}}, false},
		{"not affirming", cpuToken("warning", "snp"), db, map[string][]string{"version": {"2"}}, false},
		{"no claims", nil, db, map[string][]string{"version": {"2"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkAllow(t, e, m, tt.token, tt.res, tt.query, tt.want)
		})
	}
}

func TestTrusteePolicyOnlyTruePermits(t *testing.T) {
	e := NewEngine()
	res := Resource{Path: "default/key/1", Repository: "default", Type: "key", Tag: "1"}
	for name, text := range map[string]string{
		"string":    "package policy\n\nallow := \"yes\" if data.plugin == \"resource\"\n",
		"false":     "package policy\n\nallow := false if data.plugin == \"resource\"\n",
		"undefined": "package policy\n\nallow if data.plugin == \"other\"\n",
	} {
		got, err := e.Allow(context.Background(), Module{Name: name, Text: text}, cpuToken("affirming", "snp"), res, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if got {
			t.Errorf("%s: allow = true, want false", name)
		}
	}
}

func TestMixedResourcePolicyFails(t *testing.T) {
	m := Module{Name: "mixed", Text: "package p\n\nallow if {\n\tinput.token.iss\n\tinput.submods.cpu0\n}\n"}
	got, err := NewEngine().Allow(context.Background(), m, cpuToken("affirming", "snp"), Resource{Path: "a/b/c"}, nil)
	if err == nil || got {
		t.Errorf("allow = %v, %v; want false and an error", got, err)
	}
}

func FuzzDetectResourceDialect(f *testing.F) {
	for _, seed := range []string{trusteeDefaultPolicy, trusteeRequestPolicy, DefaultResource().Text, "package p\nallow if {", "package p\nallow if input[x]\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, module string) {
		dialect, err := DetectResourceDialect(module)
		if err == nil && dialect != TrusteeDialect && dialect != CloisterDialect {
			t.Errorf("dialect = %q without an error", dialect)
		}
	})
}
