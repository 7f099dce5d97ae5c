package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// A policy that does not define its rule must be refused at upload and fail
// closed at evaluation, never read as "nothing to deny".
func TestUndefinedRuleFailsClosed(t *testing.T) {
	ctx := context.Background()
	e := NewEngine()
	noDeny := Module{Name: "empty", Text: "package cloister.empty\n\nx := 1\n"}

	if err := e.Check(ctx, noDeny, "deny"); err == nil || !strings.Contains(err.Error(), "defines no deny rule") {
		t.Errorf("Check of a policy without deny: %v", err)
	}
	if err := e.Check(ctx, Module{Name: "r", Text: "package r\n"}, "allow"); err == nil {
		t.Error("Check accepted a resource policy without allow")
	}
	withDeny := Module{Name: "ok", Text: "package ok\n\ndeny contains r if { false; r := {} }\n"}
	if err := e.Check(ctx, withDeny, "deny"); err != nil {
		t.Errorf("Check of a policy with deny: %v", err)
	}

	d, err := e.Appraise(ctx, noDeny, &attest.Claims{TEE: attest.TEESNP}, Config{}, nil)
	if err == nil {
		t.Fatalf("Appraise with an undefined deny accepted: %+v", d)
	}
	if !strings.Contains(err.Error(), "undefined") {
		t.Errorf("error %q does not say deny is undefined", err)
	}
}

// The default policy reads debug, emulated, the test-key flag and each
// check's required flag and result from claims JSON that a caller may have
// encoded itself (AppraiseJSON). A claim that is missing or of another
// JSON type than attest.Claims writes must reject, because a rule that
// only matches true would otherwise read it as false.
func TestDefaultPolicyMalformedClaimsRejected(t *testing.T) {
	head := `{"tee":"snp","measurement":"` + measurement.String() + `","tcb":{"status":"UpToDate"}`
	anchor := `,"trust_anchor":{"kind":"vendor-root","name":"ARK-Genoa"}`
	tests := []struct {
		name      string
		anchor    string // replaces anchor when set
		claims    string // members after head and the trust anchor
		wantRule  string
		wantClaim string
	}{
		{name: "well formed", claims: `,"debug":false,"emulated":false,"checks":[]}`},
		{name: "debug missing", claims: `,"emulated":false,"checks":[]}`, wantRule: "debug", wantClaim: "debug"},
		{name: "debug a string", claims: `,"debug":"true","emulated":false,"checks":[]}`, wantRule: "debug", wantClaim: "debug"},
		{name: "debug null", claims: `,"debug":null,"emulated":false,"checks":[]}`, wantRule: "debug", wantClaim: "debug"},
		{name: "emulated missing", claims: `,"debug":false,"checks":[]}`, wantRule: "emulated", wantClaim: "emulated"},
		{name: "emulated a number", claims: `,"debug":false,"emulated":1,"checks":[]}`, wantRule: "emulated", wantClaim: "emulated"},
		{name: "test key a string", anchor: `,"trust_anchor":{"kind":"caller-key","name":"IAK","test_key":"true"}`, claims: `,"debug":false,"emulated":false,"checks":[]}`, wantRule: "test-key", wantClaim: "trust_anchor.test_key"},
		{name: "required a string", claims: `,"debug":false,"emulated":false,"checks":[{"name":"crl","result":"not-checked","required":"true"}]}`,
			wantRule: "required-check", wantClaim: "checks.crl"},
		{name: "unknown check result", claims: `,"debug":false,"emulated":false,"checks":[{"name":"crl","result":"skipped","required":true}]}`,
			wantRule: "required-check", wantClaim: "checks.crl"},
		{name: "required check without result", claims: `,"debug":false,"emulated":false,"checks":[{"name":"crl","required":true}]}`,
			wantRule: "required-check", wantClaim: "checks.crl"},
		{name: "optional check unknown result", claims: `,"debug":false,"emulated":false,"checks":[{"name":"extra","result":"skipped"}]}`},
	}
	e := NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := head + anchor + tt.claims
			if tt.anchor != "" {
				raw = head + tt.anchor + tt.claims
			}
			d, err := e.AppraiseJSON(context.Background(), DefaultAttestation(attest.TEESNP), []byte(raw), Config{}, goodRefs())
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantRule == "" {
				if !d.Accepted {
					t.Errorf("rejected with %+v", d.Reasons)
				}
				return
			}
			if d.Accepted {
				t.Fatalf("claims %s accepted", raw)
			}
			if len(d.Reasons) != 1 {
				t.Fatalf("reasons %+v, want one", d.Reasons)
			}
			if d.Reasons[0].Rule != tt.wantRule {
				t.Errorf("rule = %s, want %s", d.Reasons[0].Rule, tt.wantRule)
			}
			if d.Reasons[0].Claim != tt.wantClaim {
				t.Errorf("claim = %s, want %s", d.Reasons[0].Claim, tt.wantClaim)
			}
		})
	}
}

// A GPU rim check of composite evidence that has no result vouches for
// nothing, as one that did not run.
func TestCompositeRIMWithoutResult(t *testing.T) {
	raw := `{"tee":"composite","measurement":"` + measurement.String() + `","debug":false,"emulated":false,` +
		`"trust_anchor":{"kind":"vendor-root","name":"ARK-Genoa"},"checks":[{"name":"gpu0/rim"}]}`
	refs := map[string][]string{"composite.measurement": {measurement.String()}}
	d, err := NewEngine().AppraiseJSON(context.Background(), DefaultAttestation("composite"), []byte(raw), Config{}, refs)
	if err != nil {
		t.Fatal(err)
	}
	if d.Accepted {
		t.Fatal("composite evidence whose rim check has no result was accepted")
	}
	if len(d.Reasons) != 1 || d.Reasons[0].Claim != "checks.gpu0/rim" {
		t.Errorf("reasons %+v, want one on checks.gpu0/rim", d.Reasons)
	}
}

// The debug and emulated rules share one reason builder, and each keeps
// its own message, value and expected value.
func TestDefaultPolicyFlagReasons(t *testing.T) {
	head := `{"tee":"snp","measurement":"` + measurement.String() + `","tcb":{"status":"UpToDate"},"trust_anchor":{"kind":"vendor-root","name":"ARK-Genoa"},"checks":[]`
	tests := []struct {
		name   string
		claims string
		want   appraise.Reason
	}{
		{"emulated true", `,"debug":false,"emulated":true}`, appraise.Reason{Rule: "emulated", Claim: "emulated", Value: "true", Expected: "false",
			Message: "evidence comes from an emulated TEE signed by a development root, which proves no hardware; pass --allow-emulated only for development"}},
		{"debug true", `,"debug":true,"emulated":false}`, appraise.Reason{Rule: "debug", Claim: "debug", Value: "true", Expected: "false",
			Message: "the snp TEE runs in debug mode, so its memory is readable by the host; rebuild it without debug, or for testing store an attestation policy for snp that accepts debug (edit the output of `cloister policy default snp` and store it with `cloister policy set snp FILE`)"}},
		{"emulated a number", `,"debug":false,"emulated":1}`, appraise.Reason{Rule: "emulated", Claim: "emulated", Value: "1", Expected: "false",
			Message: "the emulated claim is 1, not a boolean, so it is unknown whether a TEE or an emulator produced the evidence; appraise the claims as the verifier returned them"}},
		{"debug missing", `,"emulated":false}`, appraise.Reason{Rule: "debug", Claim: "debug", Value: "missing", Expected: "false",
			Message: "the debug claim is missing, not a boolean, so the TEE's debug state is unknown; appraise the claims as the verifier returned them"}},
	}
	e := NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.AppraiseJSON(context.Background(), DefaultAttestation(attest.TEESNP), []byte(head+tt.claims), Config{}, goodRefs())
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Reasons) != 1 {
				t.Fatalf("reasons %+v, expected one", d.Reasons)
			}
			got := d.Reasons[0]
			if got.Rule != tt.want.Rule {
				t.Errorf("rule = %s, expected %s", got.Rule, tt.want.Rule)
			}
			if got.Claim != tt.want.Claim {
				t.Errorf("claim = %s, expected %s", got.Claim, tt.want.Claim)
			}
			if got.Value != tt.want.Value {
				t.Errorf("value = %s, expected %s", got.Value, tt.want.Value)
			}
			if got.Expected != tt.want.Expected {
				t.Errorf("expected value = %s, expected %s", got.Expected, tt.want.Expected)
			}
			if got.Message != tt.want.Message {
				t.Errorf("message:\n got %s\nwant %s", got.Message, tt.want.Message)
			}
		})
	}
}
