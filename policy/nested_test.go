package policy

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// The default policy applies the minimum TCB evaluation data number and
// the maximum VMPL to the SGX, TDX and SEV-SNP claims that composite
// evidence and attestation tokens carry, with the appraise package's
// rules and messages.
func TestNestedHardwareClaims(t *testing.T) {
	min17 := Config{MinTCBEvaluationDataNumber: 17}
	zero := uint32(0)
	max0 := Config{MaxVMPL: &zero}
	tests := []struct {
		name   string
		tee    attest.TEE
		attrs  map[string]any
		cfg    Config
		reject string // the rule that rejects, or empty
	}{
		{"composite tdx number below", attest.TEEComposite, map[string]any{"cpu_tee": "tdx", "tcb_evaluation_data_number": 16}, min17, "min-tcb-evaluation-data-number"},
		{"composite tdx number equal", attest.TEEComposite, map[string]any{"cpu_tee": "tdx", "tcb_evaluation_data_number": 17}, min17, ""},
		{"composite sgx number missing", attest.TEEComposite, map[string]any{"cpu_tee": "sgx"}, min17, "min-tcb-evaluation-data-number"},
		{"composite snp has no number", attest.TEEComposite, map[string]any{"cpu_tee": "snp"}, min17, ""},
		{"composite snp vmpl above", attest.TEEComposite, map[string]any{"cpu_tee": "snp", "vmpl": 2}, max0, "max-vmpl"},
		{"composite snp vmpl equal", attest.TEEComposite, map[string]any{"cpu_tee": "snp", "vmpl": 0}, max0, ""},
		{"composite snp vmpl missing", attest.TEEComposite, map[string]any{"cpu_tee": "snp"}, max0, "max-vmpl"},
		{"composite tdx has no vmpl", attest.TEEComposite, map[string]any{"cpu_tee": "tdx"}, max0, ""},
		{"composite without cpu tee", attest.TEEComposite, nil, Config{MinTCBEvaluationDataNumber: 17, MaxVMPL: &zero}, ""},
		{"composite cpu tee not text", attest.TEEComposite, map[string]any{"cpu_tee": 7}, Config{MinTCBEvaluationDataNumber: 17, MaxVMPL: &zero}, ""},
		{"maa snp token vmpl above", attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": json.Number("1")}, max0, "max-vmpl"},
		{"maa snp token vmpl equal", attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": json.Number("0")}, max0, ""},
		{"maa snp token vmpl missing", attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm"}, max0, "max-vmpl"},
		{"maa snp token vmpl text", attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": "0"}, max0, "max-vmpl"},
		{"maa snp token ignores vmpl attribute", attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "vmpl": 0}, max0, "max-vmpl"},
		{"maa tdx token number", attest.TEEMAAToken, map[string]any{"isolation_tee": "tdxvm"}, min17, "min-tcb-evaluation-data-number"},
		{"maa sgx token number", attest.TEEMAAToken, map[string]any{"isolation_tee": "sgx"}, min17, "min-tcb-evaluation-data-number"},
		{"maa tdx token has no vmpl", attest.TEEMAAToken, map[string]any{"isolation_tee": "tdxvm"}, max0, ""},
		{"maa unmapped isolation tee", attest.TEEMAAToken, map[string]any{"isolation_tee": "futurevm"}, Config{MinTCBEvaluationDataNumber: 17, MaxVMPL: &zero}, ""},
		{"ita tdx token number", attest.TEEITAToken, map[string]any{"attester_type": "TDX"}, min17, "min-tcb-evaluation-data-number"},
		{"ita sgx token number", attest.TEEITAToken, map[string]any{"attester_type": "SGX"}, min17, "min-tcb-evaluation-data-number"},
		{"ita token without attester", attest.TEEITAToken, nil, min17, ""},
		{"composite of maa snp token vmpl above", attest.TEEComposite, map[string]any{"cpu_tee": "maa-token", "isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": json.Number("3")}, max0, "max-vmpl"},
		{"gcp token", attest.TEEGCPToken, map[string]any{"vmpl": 3}, Config{MinTCBEvaluationDataNumber: 17, MaxVMPL: &zero}, ""},
	}
	e := NewEngine()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims := goodClaims()
			claims.TEE = tc.tee
			for name, v := range tc.attrs {
				claims.SetAttribute(name, v)
			}
			refs := map[string][]string{string(tc.tee) + ".measurement": {measurement.String()}}
			d, err := e.Appraise(context.Background(), DefaultAttestation(tc.tee), claims, tc.cfg, refs)
			if err != nil {
				t.Fatal(err)
			}
			if tc.reject == "" {
				if !d.Accepted {
					t.Fatalf("rejected: %v", d.Err())
				}
				return
			}
			if len(d.Reasons) != 1 {
				t.Fatalf("reasons %v, want only %s", rulesOf(d), tc.reject)
			}
			got := d.Reasons[0]
			if got.Rule != tc.reject {
				t.Fatalf("rule %s, want %s", got.Rule, tc.reject)
			}
			ao := appraise.Options{MinTCBEvaluationDataNumber: tc.cfg.MinTCBEvaluationDataNumber, MaxVMPL: tc.cfg.MaxVMPL}
			want := appraise.Appraise(claims, ao)
			if len(want.Reasons) != 1 {
				t.Fatalf("appraise gave %d reasons, want 1", len(want.Reasons))
			}
			if got.Message != want.Reasons[0].Message {
				t.Errorf("message:\n got %s\nwant %s", got.Message, want.Reasons[0].Message)
			}
			if got.Claim != want.Reasons[0].Claim {
				t.Errorf("claim %s, want %s", got.Claim, want.Reasons[0].Claim)
			}
			if got.Value != want.Reasons[0].Value {
				t.Errorf("value %q, want %q", got.Value, want.Reasons[0].Value)
			}
			if got.Expected != want.Reasons[0].Expected {
				t.Errorf("expected %q, want %q", got.Expected, want.Reasons[0].Expected)
			}
		})
	}
}
