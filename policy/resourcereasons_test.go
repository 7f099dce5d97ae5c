package policy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
)

// pathReasonsPolicy allows only default/key/other and explains every other
// path.
var pathReasonsPolicy = mustReadFile("testdata/path_reasons.rego")

// mustReadFile returns the content of a test data file.
func mustReadFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// noReasonsPolicy denies every path but default/key/other and gives no
// reasons.
const noReasonsPolicy = `package plain

default allow := false

allow if input.resource.path == "default/key/other"
`

// failingReasonsPolicy allows every affirming token, and its reasons rule
// raises an error whenever it is evaluated, so a decision without that
// error shows that reasons was not evaluated.
const failingReasonsPolicy = `package failing

default allow := false

allow if input.token.submods.cpu0["ear.status"] == "affirming"

reasons contains {"rule": "broken", "message": sprintf("%v", [to_number("not a number")])} if true
`

// queryValuePolicy gives a reason whose value is the list of a query
// parameter's values, not a string, which only evaluation shows, because
// the value comes from the input.
const queryValuePolicy = `package query

default allow := false

reasons contains {"rule": "count", "claim": "query.count", "value": input.query.count, "message": "too many"} if true
`

// trusteeReasonsPolicy is a Trustee-dialect policy with a helper rule that
// happens to be named reasons and is never empty.
const trusteeReasonsPolicy = `package policy

default allow := false

allow if input.submods.cpu0["ear.status"] == "affirming"

reasons contains {"rule": "cpu", "message": "not affirming"} if true
`

func tokenJSON(t *testing.T, token map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(token)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAuthorizeJSONReasons(t *testing.T) {
	defaultMessage := "the attestation result of the primary TEE is warning, not affirming"
	numberStatus := cpuToken("warning", "snp")
	numberStatus["submods"].(map[string]any)["cpu0"].(map[string]any)["ear.status"] = 2
	tests := []struct {
		name        string
		module      Module
		token       map[string]any
		path        string
		query       map[string][]string
		wantAllowed bool
		wantReasons []appraise.Reason
		// wantMessage is a part of the first reason's message.
		wantMessage string
		// wantErr is a part of ReasonsErr, empty for none.
		wantErr string
	}{
		{
			name: "default policy warning", module: DefaultResource(), token: cpuToken("warning", "snp"), path: "default/key/db",
			wantReasons: []appraise.Reason{{Rule: "cpu-status", Claim: "submods.cpu0.ear.status", Value: "warning", Expected: "affirming"}},
			wantMessage: defaultMessage,
		},
		{
			name: "default policy affirming", module: DefaultResource(), token: cpuToken("affirming", "snp"), path: "default/key/db",
			wantAllowed: true,
		},
		{
			name: "default policy without cpu0", module: DefaultResource(), token: map[string]any{"submods": map[string]any{}}, path: "default/key/db",
			wantReasons: []appraise.Reason{{Rule: "cpu-status", Claim: "submods.cpu0.ear.status", Value: "", Expected: "affirming"}},
			wantMessage: "primary TEE is missing, not affirming",
		},
		{
			name: "default policy non-string status", module: DefaultResource(), token: numberStatus, path: "default/key/db",
			wantReasons: []appraise.Reason{{Rule: "cpu-status", Claim: "submods.cpu0.ear.status", Value: "", Expected: "affirming"}},
			wantMessage: "primary TEE is missing, not affirming",
		},
		{
			name: "custom policy denied path", module: Module{Name: "custom", Text: pathReasonsPolicy}, token: cpuToken("affirming", "snp"), path: "default/key/db",
			wantReasons: []appraise.Reason{{Rule: "path", Claim: "resource.path", Value: "default/key/db", Expected: "default/key/other"}},
			wantMessage: "resource default/key/db is not default/key/other",
		},
		{
			name: "custom policy allowed path", module: Module{Name: "custom", Text: pathReasonsPolicy}, token: cpuToken("affirming", "snp"), path: "default/key/other",
			wantAllowed: true,
		},
		{
			name: "policy without reasons", module: Module{Name: "plain", Text: noReasonsPolicy}, token: cpuToken("affirming", "snp"), path: "default/key/db",
		},
		{
			name: "reasons not evaluated when allowed", module: Module{Name: "failing", Text: failingReasonsPolicy}, token: cpuToken("affirming", "snp"), path: "default/key/db",
			wantAllowed: true,
		},
		{
			name: "failing reasons keep the denial", module: Module{Name: "failing", Text: failingReasonsPolicy}, token: cpuToken("warning", "snp"), path: "default/key/db",
			wantErr: "policy failing: evaluation failed",
		},
		{
			name: "list value keeps the denial", module: Module{Name: "query", Text: queryValuePolicy}, token: cpuToken("affirming", "snp"), path: "default/key/db",
			query:   map[string][]string{"count": {"3"}},
			wantErr: "policy query: reasons must be a set of reason objects",
		},
		{
			name: "trustee dialect", module: Module{Name: "trustee", Text: trusteeReasonsPolicy}, token: cpuToken("warning", "snp"), path: "default/key/db",
		},
	}
	e := NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Resource{Path: tt.path}
			// Twice, so that the second request reads kept decisions.
			for round := range 2 {
				got, err := e.AuthorizeJSON(context.Background(), tt.module, tokenJSON(t, tt.token), res, tt.query)
				if err != nil {
					t.Fatalf("round %d: AuthorizeJSON: %v", round, err)
				}
				if got.Allowed != tt.wantAllowed {
					t.Errorf("round %d: Allowed = %v, want %v", round, got.Allowed, tt.wantAllowed)
				}
				checkReasonsErr(t, got.ReasonsErr, tt.wantErr)
				checkReasons(t, got.Reasons, tt.wantReasons, tt.wantMessage)
			}
		})
	}
}

func checkReasonsErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("ReasonsErr = %v, want none", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("ReasonsErr = nil, want an error containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("ReasonsErr = %q, want it to contain %q", err, want)
	}
	if !strings.Contains(err.Error(), "fix the reasons rule") && !strings.Contains(err.Error(), "remove the reasons rule") {
		t.Errorf("ReasonsErr = %q does not say how to fix the policy", err)
	}
}

// checkReasons compares got with want, except for the messages, of which
// only the first is checked to contain wantMessage.
func checkReasons(t *testing.T, got, want []appraise.Reason, wantMessage string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d reasons %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		message := got[i].Message
		got[i].Message = ""
		if got[i] != want[i] {
			t.Errorf("reason %d = %+v, want %+v", i, got[i], want[i])
		}
		if i == 0 && !strings.Contains(message, wantMessage) {
			t.Errorf("reason message %q does not contain %q", message, wantMessage)
		}
	}
}

func TestAuthorizeJSONMatchesAllowJSON(t *testing.T) {
	modules := []Module{
		DefaultResource(),
		{Name: "custom", Text: pathReasonsPolicy},
		{Name: "plain", Text: noReasonsPolicy},
		{Name: "trustee", Text: trusteeReasonsPolicy},
	}
	e := NewEngine()
	for _, m := range modules {
		for _, status := range []string{"affirming", "warning"} {
			for _, path := range []string{"default/key/db", "default/key/other"} {
				token := tokenJSON(t, cpuToken(status, "snp"))
				res := Resource{Path: path}
				want, err := e.AllowJSON(context.Background(), m, token, res, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := e.AuthorizeJSON(context.Background(), m, token, res, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got.Allowed != want {
					t.Errorf("%s, %s, %s: AuthorizeJSON allowed %v, AllowJSON %v", m.Name, status, path, got.Allowed, want)
				}
			}
		}
	}
}

func TestAuthorizeJSONReasonsCopied(t *testing.T) {
	e := NewEngine()
	m := Module{Name: "custom", Text: pathReasonsPolicy}
	token := tokenJSON(t, cpuToken("affirming", "snp"))
	first, err := e.AuthorizeJSON(context.Background(), m, token, Resource{Path: "default/key/db"}, nil)
	if err != nil {
		t.Fatalf("first AuthorizeJSON: %v", err)
	}
	if len(first.Reasons) != 1 {
		t.Fatalf("first AuthorizeJSON = %+v, want one reason", first)
	}
	first.Reasons[0].Value = "changed"

	second, err := e.AuthorizeJSON(context.Background(), m, token, Resource{Path: "default/key/db"}, nil)
	if err != nil {
		t.Fatalf("second AuthorizeJSON: %v", err)
	}
	if len(second.Reasons) != 1 {
		t.Fatalf("second AuthorizeJSON = %+v, want one reason", second)
	}
	if second.Reasons[0].Value != "default/key/db" {
		t.Errorf("kept reason value = %q after a caller changed its copy, want default/key/db", second.Reasons[0].Value)
	}
}

func TestAuthorizeJSONRejectsNonObjects(t *testing.T) {
	_, err := NewEngine().AuthorizeJSON(context.Background(), DefaultResource(), []byte(`[1]`), Resource{Path: "a/b/c"}, nil)
	if err == nil {
		t.Fatal("AuthorizeJSON accepted a JSON array as token claims")
	}
}

// checkReasonsCase is a resource policy for CheckReasons and the error it
// expects.
type checkReasonsCase struct {
	name   string
	module string
	// wantErr is a part of the error, empty when the policy passes.
	wantErr string
}

// checkReasonsCases are the policies of TestCheckReasons, which also seed
// FuzzCheckReasons.
func checkReasonsCases() []checkReasonsCase {
	header := "package p\n\ndefault allow := false\n\n"
	return []checkReasonsCase{
		{"default policy", DefaultResource().Text, ""},
		{"custom reasons", pathReasonsPolicy, ""},
		{"no reasons", noReasonsPolicy, ""},
		{"value read from input", queryValuePolicy, ""},
		{"trustee dialect", trusteeReasonsPolicy, ""},
		{"empty set", header + "reasons := set()\n", ""},
		{"null member", header + `reasons contains {"rule": "r", "value": null, "message": "m"} if true` + "\n", ""},
		{"set of strings", header + `reasons contains "cpu-status" if true` + "\n", "a reason is of type string, not an object"},
		{"object", header + `reasons := {"rule": "r", "message": "m"}` + "\n", "reasons is of type object"},
		{"number member", header + `reasons contains {"rule": "r", "value": 3, "message": "m"} if true` + "\n", `reason member "value" is of type number, not a string`},
		{"number from a built-in", header + `reasons contains {"rule": "r", "value": to_number("3"), "message": "m"} if true` + "\n", `reason member "value" is of type number`},
		{"boolean message", header + `reasons contains {"rule": "r", "message": true} if true` + "\n", `reason member "message" is of type boolean`},
		{"function", header + `reasons(x) := {{"rule": x}}` + "\n", "reasons is a function"},
		{"array of numbers", header + "reasons := [1, 2]\n", "a reason is of type number"},
	}
}

func TestCheckReasons(t *testing.T) {
	tests := checkReasonsCases()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckReasons(Module{Name: "uploaded", Text: tt.module})
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("CheckReasons: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckReasons accepted %q", tt.module)
			}
			if !errors.Is(err, ErrReasonsShape) {
				t.Errorf("error %q does not wrap ErrReasonsShape", err)
			}
			for _, part := range []string{"policy uploaded", tt.wantErr, "remove the reasons rule"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}

func TestReasonSetsMustBeSets(t *testing.T) {
	for _, value := range []string{"null", `"cpu"`, "true", "1", `{"rule": "r"}`} {
		deny := Module{Name: "deny-" + value, Text: "package p\n\ndeny := " + value + "\n"}
		_, err := NewEngine().AppraiseJSON(context.Background(), deny, []byte(`{}`), Config{}, nil)
		if !errors.Is(err, ErrDenyShape) {
			t.Errorf("deny := %s: error = %v, want ErrDenyShape", value, err)
		}

		reasons := Module{Name: "reasons-" + value, Text: "package p\n\ndefault allow := false\n\nreasons := " + value + "\n"}
		got, err := NewEngine().AuthorizeJSON(context.Background(), reasons, []byte(`{}`), Resource{Path: "a/b/c"}, nil)
		if err != nil {
			t.Fatalf("reasons := %s: AuthorizeJSON: %v", value, err)
		}
		if got.Allowed {
			t.Errorf("reasons := %s: request allowed", value)
		}
		if !errors.Is(got.ReasonsErr, ErrReasonsShape) {
			t.Errorf("reasons := %s: ReasonsErr = %v, want ErrReasonsShape", value, got.ReasonsErr)
		}
	}
}

func TestDefaultResourcePolicyInputPaths(t *testing.T) {
	paths, cacheable := inputPaths(DefaultResource().Text)
	if !cacheable {
		t.Fatal("the default resource policy is not cacheable")
	}
	want := []string{"token", "submods", "cpu0", "ear.status"}
	if len(paths) != 1 {
		t.Fatalf("input paths = %q, want only %q", paths, want)
	}
	if !slices.Equal(paths[0], want) {
		t.Errorf("input path = %q, want %q", paths[0], want)
	}
}

// FuzzCheckReasons checks that CheckReasons, which reads the Rego text of an
// uploaded policy, returns an error naming the policy, never a panic, for
// any text.
func FuzzCheckReasons(f *testing.F) {
	for _, tt := range checkReasonsCases() {
		f.Add(tt.module)
	}
	f.Add("package p\n\nreasons contains")
	f.Add("")
	f.Fuzz(func(t *testing.T, module string) {
		err := CheckReasons(Module{Name: "fuzzed", Text: module})
		if err != nil && !strings.Contains(err.Error(), "policy fuzzed") {
			t.Errorf("error %q does not name the policy", err)
		}
	})
}

// forgetDecisions empties e's decision cache, so that e evaluates the next
// request afresh. Unlike a new Engine, e keeps its prepared queries, which
// spares a fuzz input the compilation of every module.
func (e *Engine) forgetDecisions() {
	e.decisions.mu.Lock()
	defer e.decisions.mu.Unlock()
	clear(e.decisions.values)
	e.decisions.order = nil
}

// FuzzAuthorizeJSON checks AuthorizeJSON against AllowJSON for any token
// text. Both must decide alike, only a denial may have reasons, the
// default policy must explain each denial with one reason, and reasons
// from kept decisions must equal those of a fresh evaluation.
func FuzzAuthorizeJSON(f *testing.F) {
	for _, text := range allowJSONTokens {
		f.Add([]byte(text), "default")
	}
	f.Add([]byte(`{"submods":{"cpu0":{"ear.status":7}}}`), "other")
	f.Add([]byte(`{"a":1} x`), "other")
	modules := append(slices.Clone(allowJSONModules),
		Module{Name: "custom", Text: pathReasonsPolicy},
		Module{Name: "trustee", Text: trusteeReasonsPolicy})
	shared := NewEngine()
	reference := NewEngine()
	f.Fuzz(func(t *testing.T, text []byte, repository string) {
		res := Resource{Path: repository + "/key/other", Repository: repository, Type: "key", Tag: "other"}
		if !json.Valid(text) {
			// Callers pass only valid JSON, but other text must still not
			// cause a panic.
			shared.AuthorizeJSON(context.Background(), DefaultResource(), text, res, nil)
			return
		}
		for _, m := range modules {
			got, err := shared.AuthorizeJSON(context.Background(), m, text, res, nil)
			reference.forgetDecisions()
			allowed, wantErr := reference.AllowJSON(context.Background(), m, text, res, nil)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%s: AuthorizeJSON(%q) error = %v, AllowJSON error = %v", m.Name, text, err, wantErr)
			}
			if got.Allowed != allowed {
				t.Fatalf("%s: AuthorizeJSON(%q) allowed = %v, AllowJSON = %v", m.Name, text, got.Allowed, allowed)
			}
			if err != nil {
				continue
			}

			if got.Allowed && len(got.Reasons) > 0 {
				t.Fatalf("%s: allowed request for %q has reasons %+v", m.Name, text, got.Reasons)
			}
			if got.Allowed && got.ReasonsErr != nil {
				t.Fatalf("%s: allowed request for %q has ReasonsErr %v", m.Name, text, got.ReasonsErr)
			}
			if m.Name == DefaultResource().Name && !got.Allowed {
				if got.ReasonsErr != nil {
					t.Fatalf("default policy denied %q with ReasonsErr %v, want none", text, got.ReasonsErr)
				}
				if len(got.Reasons) != 1 {
					t.Fatalf("default policy denied %q with reasons %+v, want one", text, got.Reasons)
				}
			}

			reference.forgetDecisions()
			fresh, err := reference.AuthorizeJSON(context.Background(), m, text, res, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Reasons, fresh.Reasons) {
				t.Fatalf("%s: reasons for %q = %+v, a fresh evaluation gives %+v", m.Name, text, got.Reasons, fresh.Reasons)
			}
			if (got.ReasonsErr != nil) != (fresh.ReasonsErr != nil) {
				t.Fatalf("%s: ReasonsErr for %q = %v, a fresh evaluation gives %v", m.Name, text, got.ReasonsErr, fresh.ReasonsErr)
			}
		}
	})
}
