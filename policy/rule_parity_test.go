package policy

import (
	"context"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// checkRuleParity appraises claims with the default policy for their TEE
// and compares the policy's reason for rule with the one the appraise
// package's Go check returns. With reject false it fails if the policy
// reports the rule at all, and returns nil. With reject true it returns the
// policy's reason after checking that message, claim, value and expected
// value match the Go check's single reason.
func checkRuleParity(t *testing.T, e *Engine, claims *attest.Claims, cfg Config, rule string, reject bool, goCheck func(*attest.Claims) []appraise.Reason) *appraise.Reason {
	t.Helper()
	refs := map[string][]string{string(claims.TEE) + ".measurement": {measurement.String()}}
	d, err := e.Appraise(context.Background(), DefaultAttestation(claims.TEE), claims, cfg, refs)
	if err != nil {
		t.Fatal(err)
	}

	var got *appraise.Reason
	for i, r := range d.Reasons {
		if r.Rule == rule {
			got = &d.Reasons[i]
		}
	}
	if !reject {
		if got != nil {
			t.Fatalf("rejected: %s", got.Message)
		}
		return nil
	}

	if got == nil {
		t.Fatalf("reasons %v, expected %s", rulesOf(d), rule)
	}

	want := goCheck(claims)
	if len(want) != 1 {
		t.Fatalf("appraise gave %d reasons, expected 1", len(want))
	}
	if got.Message != want[0].Message {
		t.Errorf("message:\n got %s\nwant %s", got.Message, want[0].Message)
	}
	if got.Claim != want[0].Claim {
		t.Errorf("claim %s, want %s", got.Claim, want[0].Claim)
	}
	if got.Value != want[0].Value {
		t.Errorf("value %q, want %q", got.Value, want[0].Value)
	}
	if got.Expected != want[0].Expected {
		t.Errorf("expected %q, want %q", got.Expected, want[0].Expected)
	}
	return got
}
