package policy

import (
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// The default policy applies the maximum VMPL of Config with the appraise
// package's rule and message.
func TestMaxVMPL(t *testing.T) {
	const rule = "max-vmpl"
	maximum := func(v uint32) *uint32 { return &v }
	tests := []struct {
		name    string
		tee     attest.TEE
		vmpl    any // nil: no attribute
		maximum *uint32
		reject  bool
	}{
		{name: "any", tee: attest.TEESNP, vmpl: 3},
		{name: "equal", tee: attest.TEESNP, vmpl: 1, maximum: maximum(1)},
		{name: "below", tee: attest.TEESNP, vmpl: 0, maximum: maximum(1)},
		{name: "above", tee: attest.TEESNP, vmpl: 1, maximum: maximum(0), reject: true},
		{name: "missing", tee: attest.TEESNP, maximum: maximum(0), reject: true},
		{name: "missing without maximum", tee: attest.TEESNP},
		{name: "string", tee: attest.TEESNP, vmpl: "0", maximum: maximum(0), reject: true},
		{name: "tdx has none", tee: attest.TEETDX, maximum: maximum(0)},
	}
	e := NewEngine()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims := goodClaims()
			claims.TEE = tc.tee
			if tc.vmpl != nil {
				claims.SetAttribute("vmpl", tc.vmpl)
			}
			goCheck := func(c *attest.Claims) []appraise.Reason {
				return appraise.CheckMaxVMPL(c, appraise.Options{MaxVMPL: tc.maximum})
			}
			checkRuleParity(t, e, claims, Config{MaxVMPL: tc.maximum}, rule, tc.reject, goCheck)
		})
	}
}
