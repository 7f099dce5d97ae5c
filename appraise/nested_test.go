package appraise

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// nestedClaims returns claims of evidence tee with the attributes attrs,
// such as composite claims with cpu_tee or an MAA token's isolation_tee.
func nestedClaims(tee attest.TEE, attrs map[string]any) *attest.Claims {
	c := baseClaims()
	c.TEE = tee
	for name, v := range attrs {
		c.SetAttribute(name, v)
	}
	return c
}

// The minimum TCB evaluation data number and the maximum VMPL apply to the
// SGX, TDX and SEV-SNP claims that composite evidence and attestation
// tokens carry, not only to top-level SGX, TDX and SEV-SNP claims.
func TestNestedHardwareClaims(t *testing.T) {
	min17 := Options{MinTCBEvaluationDataNumber: 17}
	max0 := Options{MaxVMPL: vmpl(0)}
	tests := []struct {
		name      string
		claims    *attest.Claims
		opts      Options
		wantRule  string // empty: accepted
		wantClaim string
		wantText  string
	}{
		{name: "composite tdx number below",
			claims: nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "tdx", TCBEvaluationDataNumberAttribute: 16}), opts: min17,
			wantRule: "min-tcb-evaluation-data-number", wantClaim: "attributes.tcb_evaluation_data_number", wantText: "TCB evaluation data number 16 "},
		{name: "composite tdx number equal",
			claims: nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "tdx", TCBEvaluationDataNumberAttribute: 17}), opts: min17},
		{name: "composite sgx number missing",
			claims: nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "sgx"}), opts: min17,
			wantRule: "min-tcb-evaluation-data-number", wantClaim: "attributes.tcb_evaluation_data_number", wantText: "the composite claims have no TCB evaluation data number"},
		{name: "composite snp has no number",
			claims: nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "snp", "vmpl": uint32(0)}), opts: min17},
		{name: "composite snp vmpl above",
			claims: nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "snp", "vmpl": uint32(2)}), opts: max0,
			wantRule: "max-vmpl", wantClaim: "attributes.vmpl", wantText: "the SEV-SNP report is from VMPL 2, above the maximum VMPL 0"},
		{name: "composite snp vmpl equal",
			claims: nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "snp", "vmpl": uint32(0)}), opts: max0},
		{name: "composite snp vmpl missing",
			claims: nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "snp"}), opts: max0,
			wantRule: "max-vmpl", wantClaim: "attributes.vmpl", wantText: "the composite claims have no VMPL"},
		{name: "composite tdx has no vmpl",
			claims: nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "tdx"}), opts: max0},
		{name: "composite without cpu tee",
			claims: nestedClaims(attest.TEEComposite, nil), opts: Options{MinTCBEvaluationDataNumber: 17, MaxVMPL: vmpl(0)}},
		{name: "maa snp token vmpl above",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": json.Number("1")}), opts: max0,
			wantRule: "max-vmpl", wantClaim: "attributes.x-ms-sevsnpvm-vmpl", wantText: "the SEV-SNP report is from VMPL 1, above the maximum VMPL 0"},
		{name: "maa snp token vmpl equal",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": json.Number("0")}), opts: max0},
		{name: "maa snp token vmpl written as 0.0",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": json.Number("0.0")}), opts: max0},
		{name: "maa snp token vmpl missing",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm"}), opts: max0,
			wantRule: "max-vmpl", wantClaim: "attributes.x-ms-sevsnpvm-vmpl", wantText: "the maa-token token does not state the VMPL of the SEV-SNP report as a number in x-ms-sevsnpvm-vmpl"},
		{name: "maa snp token vmpl text",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": "0"}), opts: max0,
			wantRule: "max-vmpl", wantText: "does not state the VMPL"},
		{name: "maa snp token vmpl negative",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": json.Number("-1")}), opts: max0,
			wantRule: "max-vmpl", wantText: "does not state the VMPL"},
		{name: "maa snp token has no number",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": json.Number("0")}), opts: min17},
		{name: "maa tdx token number",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "tdxvm"}), opts: min17,
			wantRule: "min-tcb-evaluation-data-number", wantClaim: "attributes.tcb_evaluation_data_number",
			wantText: "the maa-token token does not state the TCB evaluation data number of the TCB Info and QE Identity that its service used for the tdx evidence, so the minimum 17 cannot be checked"},
		{name: "maa sgx token number",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "sgx"}), opts: min17,
			wantRule: "min-tcb-evaluation-data-number", wantText: "does not state the TCB evaluation data number"},
		{name: "maa tdx token has no vmpl",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "tdxvm"}), opts: max0},
		{name: "maa unmapped isolation tee",
			claims: nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "futurevm"}), opts: Options{MinTCBEvaluationDataNumber: 17, MaxVMPL: vmpl(0)}},
		{name: "ita tdx token number",
			claims: nestedClaims(attest.TEEITAToken, map[string]any{"attester_type": "TDX"}), opts: min17,
			wantRule: "min-tcb-evaluation-data-number", wantText: "the ita-token token does not state the TCB evaluation data number"},
		{name: "ita sgx token number",
			claims: nestedClaims(attest.TEEITAToken, map[string]any{"attester_type": "SGX"}), opts: min17,
			wantRule: "min-tcb-evaluation-data-number", wantText: "for the sgx evidence"},
		{name: "ita token names fix",
			claims: nestedClaims(attest.TEEITAToken, map[string]any{"attester_type": "TDX"}), opts: min17,
			wantRule: "min-tcb-evaluation-data-number", wantText: "verify the tdx quote itself with the current TCB Info and QE Identity (--collateral), or remove --min-tcb-evaluation-data-number"},
		{name: "ita token without attester",
			claims: nestedClaims(attest.TEEITAToken, nil), opts: min17},
		{name: "ita token without minimum",
			claims: nestedClaims(attest.TEEITAToken, map[string]any{"attester_type": "TDX"})},
		{name: "composite of maa snp token vmpl above",
			claims: nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "maa-token", "isolation_tee": "sevsnpvm", "x-ms-sevsnpvm-vmpl": json.Number("3")}), opts: max0,
			wantRule: "max-vmpl", wantClaim: "attributes.x-ms-sevsnpvm-vmpl", wantText: "VMPL 3, above"},
		{name: "gcp token",
			claims: nestedClaims(attest.TEEGCPToken, map[string]any{"vmpl": uint32(3)}), opts: Options{MinTCBEvaluationDataNumber: 17, MaxVMPL: vmpl(0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Appraise(tc.claims, tc.opts)
			if tc.wantRule == "" {
				if !d.Accepted {
					t.Fatalf("rejected: %v", d.Err())
				}
				return
			}
			if d.Accepted {
				t.Fatal("accepted, want rejection")
			}
			if len(d.Reasons) != 1 {
				t.Fatalf("%d reasons (%v), want 1", len(d.Reasons), d.Err())
			}
			r := d.Reasons[0]
			if r.Rule != tc.wantRule {
				t.Errorf("rule %q, want %q", r.Rule, tc.wantRule)
			}
			if tc.wantClaim != "" && r.Claim != tc.wantClaim {
				t.Errorf("claim %q, want %q", r.Claim, tc.wantClaim)
			}
			if !strings.Contains(r.Message, tc.wantText) {
				t.Errorf("message %q does not contain %q", r.Message, tc.wantText)
			}
		})
	}
}

// HardwareTEE names the hardware TEE and the evidence that carries it.
func TestHardwareTEE(t *testing.T) {
	tests := []struct {
		claims             *attest.Claims
		hardware, evidence attest.TEE
	}{
		{nestedClaims(attest.TEESNP, nil), attest.TEESNP, attest.TEESNP},
		{nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": "tdx"}), attest.TEETDX, attest.TEETDX},
		{nestedClaims(attest.TEEComposite, map[string]any{"cpu_tee": 7}), "", ""},
		{nestedClaims(attest.TEEMAAToken, map[string]any{"isolation_tee": "sevsnpvm"}), attest.TEESNP, attest.TEEMAAToken},
		{nestedClaims(attest.TEEITAToken, map[string]any{"attester_type": "tdx"}), "", attest.TEEITAToken},
		{nestedClaims(attest.TEEAzureVTPM, nil), "", attest.TEEAzureVTPM},
	}
	for _, tc := range tests {
		hardware, evidence := HardwareTEE(tc.claims)
		if hardware != tc.hardware {
			t.Errorf("%s %v: hardware TEE %q, want %q", tc.claims.TEE, tc.claims.Attributes, hardware, tc.hardware)
		}
		if evidence != tc.evidence {
			t.Errorf("%s %v: evidence TEE %q, want %q", tc.claims.TEE, tc.claims.Attributes, evidence, tc.evidence)
		}
	}
}
