package policy

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// The default attestation policy reads no volatile claim, so its decisions
// can be reused across nonces.
func TestDefaultPolicyInputPaths(t *testing.T) {
	for _, tee := range []attest.TEE{attest.TEESNP, attest.TEETDX, attest.TEESGX} {
		paths, ok := inputPaths(DefaultAttestation(tee).Text)
		if !ok {
			t.Fatalf("%s: default policy is not cacheable", tee)
		}
		for _, p := range paths {
			switch strings.Join(p, ".") {
			case "claims", "claims.report_data", "claims.nonce", "claims.verified_at":
				t.Errorf("%s: default policy reads input.%s", tee, strings.Join(p, "."))
			}
		}
		if !slices.ContainsFunc(paths, func(p []string) bool { return strings.Join(p, ".") == "claims.measurement" }) {
			t.Errorf("%s: paths %v lack claims.measurement", tee, paths)
		}
	}
}

// A module that could read the input in ways its references do not show
// is never cached.
func TestInputPathsNotCacheable(t *testing.T) {
	tests := map[string]string{
		"whole input":          "x := input",
		"whole claims":         "x := object.get(input.claims, \"tee\", \"\")",
		"variable after input": "x := input[k] if some k in [\"claims\"]",
		"with modifier":        "x := y with input.claims.tee as \"snp\"\ny := input.claims.tee",
		"time":                 "x := time.now_ns()",
		"http":                 "x := http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"})",
		"import of input":      "import input.claims as c\nx := c.tee",
		"does not parse":       "x := ",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			if _, ok := inputPaths("package p\n\n" + body + "\n"); ok {
				t.Error("module is cacheable")
			}
		})
	}
}

func TestInputPathsOutermost(t *testing.T) {
	module := `package p

a := input.claims.tcb.status
b := input.claims.tcb
c if some check in input.claims.checks
d := input.claims.checks[0].name
e := input.config.allow_emulated
`
	paths, ok := inputPaths(module)
	if !ok {
		t.Fatal("module is not cacheable")
	}
	var got []string
	for _, p := range paths {
		got = append(got, strings.Join(p, "."))
	}
	want := []string{"claims.tcb", "claims.checks", "config.allow_emulated"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("paths = %v, want %v", got, want)
	}
}

// A reused decision is the one a fresh evaluation gives: the same for
// claims that differ only where the policy does not read, and a new one
// wherever the policy reads, the reference values or the configuration
// differ.
func TestDecisionReuse(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	m := DefaultAttestation(attest.TEESNP)
	appraiseWith := func(modify func(*attest.Claims), cfg Config, refs map[string][]string) []string {
		t.Helper()
		c := goodClaims()
		if modify != nil {
			modify(c)
		}
		d, err := e.Appraise(ctx, m, c, cfg, refs)
		if err != nil {
			t.Fatal(err)
		}
		return rulesOf(d)
	}

	if got := appraiseWith(nil, Config{}, goodRefs()); len(got) != 0 {
		t.Fatalf("good claims rejected by %v", got)
	}
	got := appraiseWith(func(c *attest.Claims) { c.ReportData = attest.Hex("other nonce") }, Config{}, goodRefs())
	if len(got) != 0 {
		t.Errorf("other report data rejected by %v", got)
	}
	if n := len(e.decisions.values); n != 1 {
		t.Errorf("%d decisions kept for claims differing only in report data, want 1", n)
	}

	got = appraiseWith(func(c *attest.Claims) { c.Measurement = attest.Hex("other") }, Config{}, goodRefs())
	if !slices.Equal(got, []string{"measurement"}) {
		t.Errorf("other measurement: rules %v, want [measurement]", got)
	}
	got = appraiseWith(nil, Config{}, map[string][]string{"snp.measurement": {"00"}})
	if !slices.Equal(got, []string{"measurement"}) {
		t.Errorf("other reference values: rules %v, want [measurement]", got)
	}
	got = appraiseWith(func(c *attest.Claims) { c.Emulated = true }, Config{}, goodRefs())
	if !slices.Equal(got, []string{"emulated"}) {
		t.Errorf("emulated: rules %v, want [emulated]", got)
	}
	got = appraiseWith(func(c *attest.Claims) { c.Emulated = true }, Config{AllowEmulated: true}, goodRefs())
	if len(got) != 0 {
		t.Errorf("emulated with allow_emulated: rules %v", got)
	}
}

// A policy that reads the report data gets a decision per report data.
func TestDecisionKeyedByReadClaims(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	m := Module{Name: "report-data", Text: `package p

deny contains {"rule": "report-data", "claim": "report_data", "value": input.claims.report_data, "expected": "00", "message": "wrong report data"} if {
	input.claims.report_data != "00"
}
`}
	for _, tt := range []struct {
		reportData attest.Hex
		accepted   bool
	}{{attest.Hex{0}, true}, {attest.Hex{1}, false}, {attest.Hex{0}, true}} {
		c := goodClaims()
		c.ReportData = tt.reportData
		d, err := e.Appraise(ctx, m, c, Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Accepted != tt.accepted {
			t.Errorf("report data %s: accepted %v, want %v", tt.reportData, d.Accepted, tt.accepted)
		}
	}
}

// A caller that changes a returned decision does not change the kept one.
func TestDecisionCopied(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	m := DefaultAttestation(attest.TEESNP)
	c := goodClaims()
	c.Debug = true
	d, err := e.Appraise(ctx, m, c, Config{}, goodRefs())
	if err != nil {
		t.Fatal(err)
	}
	d.Reasons[0].Rule = "changed"
	d.Accepted = true
	again, err := e.Appraise(ctx, m, c, Config{}, goodRefs())
	if err != nil {
		t.Fatal(err)
	}
	if again.Accepted || again.Reasons[0].Rule != "debug" {
		t.Errorf("kept decision changed: accepted %v, rules %v", again.Accepted, rulesOf(again))
	}
}

// A reused release decision follows the token claims and the resource the
// policy reads.
func TestAllowDecisionReuse(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	token := func(status string, nonce string) map[string]any {
		return map[string]any{"eat_nonce": nonce, "submods": map[string]any{"cpu0": map[string]any{"ear.status": status}}}
	}
	byRepository := Module{Name: "by-repository", Text: `package p

default allow := false

allow if {
	input.token.submods.cpu0["ear.status"] == "affirming"
	input.resource.repository == "default"
}
`}
	tests := []struct {
		name  string
		m     Module
		token map[string]any
		res   Resource
		allow bool
	}{
		{"default affirming", DefaultResource(), token("affirming", "n1"), Resource{Repository: "default"}, true},
		{"default other nonce", DefaultResource(), token("affirming", "n2"), Resource{Repository: "default"}, true},
		{"default warning", DefaultResource(), token("warning", "n1"), Resource{Repository: "default"}, false},
		{"default contraindicated", DefaultResource(), token("contraindicated", "n1"), Resource{Repository: "default"}, false},
		{"repository allowed", byRepository, token("affirming", "n1"), Resource{Repository: "default"}, true},
		{"repository denied", byRepository, token("affirming", "n1"), Resource{Repository: "other"}, false},
		{"repository allowed again", byRepository, token("affirming", "n3"), Resource{Repository: "default"}, true},
		{"no token", DefaultResource(), nil, Resource{Repository: "default"}, false},
	}
	for _, tt := range tests {
		allow, err := e.Allow(ctx, tt.m, tt.token, tt.res, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if allow != tt.allow {
			t.Errorf("%s: allow = %v, want %v", tt.name, allow, tt.allow)
		}
	}
}

// FuzzAppraiseJSON appraises arbitrary claims JSON with the default policy
// twice, the second time from the decision cache when the first was kept:
// both must agree, and nothing may panic.
func FuzzAppraiseJSON(f *testing.F) {
	good, err := json.Marshal(goodClaims())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"tee":"snp","measurement":"ab","checks":null,"tcb":{"status":"OutOfDate","advisory_ids":["INTEL-SA-00001"]}}`))
	f.Add([]byte(`{"tee":"snp"} {}`))
	f.Add([]byte(`null`))
	e := NewEngine()
	m := DefaultAttestation(attest.TEESNP)
	f.Fuzz(func(t *testing.T, claims []byte) {
		first, err := e.AppraiseJSON(context.Background(), m, claims, Config{}, goodRefs())
		if err != nil {
			return
		}
		second, err := e.AppraiseJSON(context.Background(), m, claims, Config{}, goodRefs())
		if err != nil {
			t.Fatalf("second appraisal failed: %v", err)
		}
		if first.Accepted != second.Accepted || !slices.Equal(rulesOf(first), rulesOf(second)) {
			t.Fatalf("decisions differ: %v then %v", rulesOf(first), rulesOf(second))
		}
	})
}
