package policy

import (
	"context"
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
			refs := map[string][]string{string(tc.tee) + ".measurement": {measurement.String()}}
			d, err := e.Appraise(context.Background(), DefaultAttestation(tc.tee), claims, Config{MaxVMPL: tc.maximum}, refs)
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
			want := appraise.CheckMaxVMPL(claims, appraise.Options{MaxVMPL: tc.maximum})
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
		})
	}
}
