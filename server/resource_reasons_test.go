package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/store"
)

// otherOnlyResourcePolicy releases only default/key/other and explains
// every other request.
var otherOnlyResourcePolicy = func() string {
	b, err := os.ReadFile(filepath.Join("..", "policy", "testdata", "path_reasons.rego"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// A denied resource request keeps the body the KBS protocol fixes, and the
// audit record names the policy's reason: rule, claim, value and expected
// value.
func TestResourceDenialReasons(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		ctx := context.Background()
		if err := ValidatePolicy(store.PolicyResource, DefaultResourcePolicyName, otherOnlyResourcePolicy); err != nil {
			t.Fatalf("ValidatePolicy: %v", err)
		}
		if _, err := ts.store.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName, otherOnlyResourcePolicy); err != nil {
			t.Fatal(err)
		}

		c, _ := ts.attestClient(t, "good")
		resp, err := c.HTTPClient.Get(ts.URL + "/kbs/v0/resource/" + testSecretPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body := wantProblemResponse(t, resp, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
		problem, err := kbs.ParseProblem(resp.StatusCode, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if problem.Detail != "Access denied by policy" {
			t.Errorf("problem detail = %q, want %q", problem.Detail, "Access denied by policy")
		}
		if strings.Contains(body, "default/key/other") {
			t.Errorf("response body %s carries the policy's reason", body)
		}

		rec := auditRecordOf(t, ts.store, store.AuditDeny)
		if rec.Verdict != "policy_deny" {
			t.Errorf("deny record verdict = %q, want policy_deny", rec.Verdict)
		}
		mod := policy.Module{Name: DefaultResourcePolicyName, Text: otherOnlyResourcePolicy}
		if rec.PolicyDigest != mod.Digest() {
			t.Errorf("deny record policy digest = %q, want %q", rec.PolicyDigest, mod.Digest())
		}
		wantReason := "the resource policy " + mod.ID() + " denied the request: " +
			`path: resource default/key/db is not default/key/other, the only resource this policy releases ` +
			`(claim resource.path, value "default/key/db", expected "default/key/other")`
		if !strings.Contains(rec.Reason, wantReason) {
			t.Errorf("deny record reason = %q, want it to contain %q", rec.Reason, wantReason)
		}
	})
}

func TestValidatePolicyReasons(t *testing.T) {
	tests := []struct {
		name    string
		module  string
		wantErr bool
	}{
		{"reason objects", otherOnlyResourcePolicy, false},
		{"default policy", policy.DefaultResource().Text, false},
		{"set of strings", "package p\n\ndefault allow := false\n\nreasons contains \"denied\" if true\n", true},
		{"number value", "package p\n\ndefault allow := false\n\nreasons contains {\"rule\": \"r\", \"value\": 3, \"message\": \"m\"} if true\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePolicy(store.PolicyResource, "uploaded", tt.module)
			if !tt.wantErr {
				if err != nil {
					t.Errorf("ValidatePolicy: %v", err)
				}
				return
			}
			if !errors.Is(err, policy.ErrReasonsShape) {
				t.Errorf("ValidatePolicy error = %v, want policy.ErrReasonsShape", err)
			}
		})
	}
}

func TestReasonTexts(t *testing.T) {
	policyID := policy.Module{Name: "p", Text: "x"}.ID()
	many := make([]appraise.Reason, maxReasonTexts+3)
	for i := range many {
		many[i] = appraise.Reason{Rule: "r", Message: "m"}
	}
	tests := []struct {
		name     string
		decision policy.ResourceDecision
		want     []string
	}{
		{
			name:     "all members",
			decision: policy.ResourceDecision{Reasons: []appraise.Reason{{Rule: "cpu-status", Claim: "submods.cpu0.ear.status", Value: "warning", Expected: "affirming", Message: "not affirming"}}},
			want:     []string{`cpu-status: not affirming (claim submods.cpu0.ear.status, value "warning", expected "affirming")`},
		},
		{
			name:     "rule and message only",
			decision: policy.ResourceDecision{Reasons: []appraise.Reason{{Rule: "path", Message: "denied"}}},
			want:     []string{"path: denied"},
		},
		{
			name:     "reasons rule failed",
			decision: policy.ResourceDecision{ReasonsErr: errors.New("policy p: evaluation failed")},
			want:     []string{"the reasons rule of resource policy p@sha256:" + policy.Module{Name: "p", Text: "x"}.Digest() + " failed, so the denial has no reasons: policy p: evaluation failed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reasonTexts(policyID, tt.decision)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("reasonTexts = %q, want %q", got, tt.want)
			}
		})
	}

	got := reasonTexts(policyID, policy.ResourceDecision{Reasons: many})
	if len(got) != maxReasonTexts+1 {
		t.Fatalf("%d texts for %d reasons, want %d", len(got), len(many), maxReasonTexts+1)
	}
	if got[maxReasonTexts] != "3 more reasons left out" {
		t.Errorf("last text = %q, want %q", got[maxReasonTexts], "3 more reasons left out")
	}

	long := reasonTexts(policyID, policy.ResourceDecision{Reasons: []appraise.Reason{{Rule: "r", Message: strings.Repeat("é", maxReasonTextLen)}}})
	if len(long[0]) > maxReasonTextLen+len("…") {
		t.Errorf("text of %d bytes, want at most %d", len(long[0]), maxReasonTextLen+len("…"))
	}
	if !strings.HasSuffix(long[0], "é…") {
		t.Errorf("long text ends in %q, want a whole character and an ellipsis", long[0][len(long[0])-8:])
	}
}

// brokenReasonsPolicy denies every request, and its reasons rule puts a
// number from the token where a string belongs, which only evaluation
// finds.
const brokenReasonsPolicy = `package broken_reasons

default allow := false

reasons contains {
	"rule": "broken",
	"claim": "iat",
	"value": input.token.iat,
	"expected": "a string",
	"message": "the value is a number",
} if true
`

// A reasons rule that fails at evaluation leaves the request denied and
// logs a warning with the request ID and the policy, because the policy
// needs a fix.
func TestResourceReasonsFailureWarns(t *testing.T) {
	ts := startService(t, backends(t)[0], serviceOptions{allowEmulated: true})
	ctx := context.Background()
	if err := ValidatePolicy(store.PolicyResource, DefaultResourcePolicyName, brokenReasonsPolicy); err != nil {
		t.Fatalf("ValidatePolicy rejected a policy whose fault shows only at evaluation: %v", err)
	}
	if _, err := ts.store.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName, brokenReasonsPolicy); err != nil {
		t.Fatal(err)
	}
	rep, logs := startLogged(t, ts, nil)

	_, err := rep.newClient(t, "good").Resource(ctx, testSecretPath)
	wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)

	var requestIDErr *kbs.RequestIDError
	if !errors.As(err, &requestIDErr) {
		t.Fatalf("error %v carries no request ID", err)
	}
	line := logs.waitForLine(t, "kbs: resource policy reasons rule failed", requestIDErr.RequestID)
	if line["level"] != "WARN" {
		t.Errorf("level = %v, want WARN", line["level"])
	}
	mod := policy.Module{Name: DefaultResourcePolicyName, Text: brokenReasonsPolicy}
	if line["policy"] != mod.ID() {
		t.Errorf("policy = %v, want %s", line["policy"], mod.ID())
	}
	if msg, _ := line["error"].(string); !strings.Contains(msg, "reasons") {
		t.Errorf("error %q does not name the reasons rule", msg)
	}
}
