package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// The default policy applies the minimum TCB evaluation data number of
// Config with the appraise package's rule and message.
func TestMinTCBEvaluationDataNumber(t *testing.T) {
	const rule = "min-tcb-evaluation-data-number"
	tests := []struct {
		name    string
		tee     attest.TEE
		number  any // nil: no attribute
		minimum uint32
		reject  bool
	}{
		{name: "no minimum", tee: attest.TEETDX, number: 16},
		{name: "equal", tee: attest.TEETDX, number: 17, minimum: 17},
		{name: "above", tee: attest.TEETDX, number: 18, minimum: 17},
		{name: "below", tee: attest.TEETDX, number: 16, minimum: 17, reject: true},
		{name: "sgx below", tee: attest.TEESGX, number: 3, minimum: 17, reject: true},
		{name: "missing", tee: attest.TEETDX, minimum: 17, reject: true},
		{name: "missing without minimum", tee: attest.TEETDX},
		{name: "string", tee: attest.TEETDX, number: "17", minimum: 17, reject: true},
		{name: "fraction", tee: attest.TEETDX, number: 17.5, minimum: 17, reject: true},
		{name: "snp has none", tee: attest.TEESNP, minimum: 17},
	}
	e := NewEngine()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims := goodClaims()
			claims.TEE = tc.tee
			if tc.number != nil {
				claims.SetAttribute(appraise.TCBEvaluationDataNumberAttribute, tc.number)
			}
			refs := map[string][]string{string(tc.tee) + ".measurement": {measurement.String()}}
			d, err := e.Appraise(context.Background(), DefaultAttestation(tc.tee), claims, Config{MinTCBEvaluationDataNumber: tc.minimum}, refs)
			if err != nil {
				t.Fatal(err)
			}
			var got *appraise.Reason
			for i, r := range d.Reasons {
				if r.Rule == rule {
					got = &d.Reasons[i]
				}
			}
			if !tc.reject {
				if got != nil {
					t.Fatalf("rejected: %s", got.Message)
				}
				return
			}
			if got == nil {
				t.Fatalf("reasons %v, expected %s", rulesOf(d), rule)
			}
			want := appraise.CheckMinTCBEvaluationDataNumber(claims, appraise.Options{MinTCBEvaluationDataNumber: tc.minimum})
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
			if !strings.Contains(got.Message, "17") {
				t.Errorf("message %q does not name the minimum", got.Message)
			}
		})
	}
}
