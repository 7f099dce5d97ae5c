package policy

import (
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
			cfg := Config{MinTCBEvaluationDataNumber: tc.minimum}
			goCheck := func(c *attest.Claims) []appraise.Reason {
				return appraise.CheckMinTCBEvaluationDataNumber(c, appraise.Options{MinTCBEvaluationDataNumber: tc.minimum})
			}
			got := checkRuleParity(t, e, claims, cfg, rule, tc.reject, goCheck)
			if got == nil {
				return
			}
			if !strings.Contains(got.Message, "17") {
				t.Errorf("message %q does not name the minimum", got.Message)
			}
		})
	}
}
