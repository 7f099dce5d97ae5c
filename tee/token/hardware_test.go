package token

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
)

// The maximum VMPL and the minimum TCB evaluation data number apply to the
// SEV-SNP, TDX and SGX claims of MAA and Intel Trust Authority tokens. MAA
// states the VMPL of an SEV-SNP report, and neither service states a TCB
// evaluation data number, so the minimum rejects their Intel tokens.
func TestTokenHardwareOptions(t *testing.T) {
	maa := newService(t)
	maaOpts := attest.Options{At: testNow, Collateral: setOf(t, maa.jwks(t, "RS256"))}
	ita := newService(t).withChain(t)
	itaOpts := attest.Options{At: testNow, Collateral: setOf(t, ita.jwks(t, "PS384"), ita.chain[2].Raw)}

	snpAt := func(vmpl any) map[string]any {
		c := maaClaims()
		if vmpl != nil {
			c["x-ms-isolation-tee"].(map[string]any)["x-ms-sevsnpvm-vmpl"] = vmpl
		}
		return c
	}
	maximum := func(v uint32) *uint32 { return &v }
	tests := []struct {
		name     string
		token    string
		opts     attest.Options
		ao       appraise.Options
		wantText string // empty: accepted
	}{
		{name: "maa snp vmpl 2 above maximum 0", token: maa.sign(t, jose.RS256, snpAt(2), nil), opts: maaOpts,
			ao: appraise.Options{MaxVMPL: maximum(0)}, wantText: "the SEV-SNP report is from VMPL 2, above the maximum VMPL 0"},
		{name: "maa snp vmpl 2 under maximum 2", token: maa.sign(t, jose.RS256, snpAt(2), nil), opts: maaOpts,
			ao: appraise.Options{MaxVMPL: maximum(2)}},
		{name: "maa snp vmpl 0 under maximum 0", token: maa.sign(t, jose.RS256, snpAt(0), nil), opts: maaOpts,
			ao: appraise.Options{MaxVMPL: maximum(0)}},
		{name: "maa snp vmpl any", token: maa.sign(t, jose.RS256, snpAt(3), nil), opts: maaOpts},
		{name: "maa snp without vmpl", token: maa.sign(t, jose.RS256, snpAt(nil), nil), opts: maaOpts,
			ao: appraise.Options{MaxVMPL: maximum(0)}, wantText: "does not state the VMPL of the SEV-SNP report as a number in x-ms-sevsnpvm-vmpl"},
		{name: "maa snp has no evaluation number", token: maa.sign(t, jose.RS256, snpAt(0), nil), opts: maaOpts,
			ao: appraise.Options{MinTCBEvaluationDataNumber: 17}},
		{name: "maa tdx evaluation number", token: maa.sign(t, jose.RS256, maaDirectTDXClaims(), nil), opts: maaOpts,
			ao: appraise.Options{MinTCBEvaluationDataNumber: 17}, wantText: "the maa-token token does not state the TCB evaluation data number"},
		{name: "maa cvm tdx evaluation number", token: maa.sign(t, jose.RS256, maaCVMTDXClaims(), nil), opts: maaOpts,
			ao: appraise.Options{MinTCBEvaluationDataNumber: 17}, wantText: "for the tdx evidence"},
		{name: "maa sgx evaluation number", token: maa.sign(t, jose.RS256, maaSGXClaims(), nil), opts: maaOpts,
			ao: appraise.Options{MinTCBEvaluationDataNumber: 17}, wantText: "for the sgx evidence"},
		{name: "maa tdx has no vmpl", token: maa.sign(t, jose.RS256, maaDirectTDXClaims(), nil), opts: maaOpts,
			ao: appraise.Options{MaxVMPL: maximum(0)}},
		{name: "ita tdx evaluation number", token: ita.sign(t, jose.PS384, itaClaims(t), nil), opts: itaOpts,
			ao: appraise.Options{MinTCBEvaluationDataNumber: 17}, wantText: "the ita-token token does not state the TCB evaluation data number"},
		{name: "ita tdx without minimum", token: ita.sign(t, jose.PS384, itaClaims(t), nil), opts: itaOpts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := appraise.Evaluate(context.Background(), attest.Evidence{Data: []byte(tc.token)}, tc.opts, tc.ao)
			if tc.wantText == "" {
				if res.Verdict != appraise.Accept {
					t.Fatalf("verdict %s (%v), want accept", res.Verdict, res.Error)
				}
				return
			}
			if res.Verdict != appraise.Reject {
				t.Fatalf("verdict %s (%v), want reject", res.Verdict, res.Error)
			}
			if !strings.Contains(res.Error.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", res.Error, tc.wantText)
			}
		})
	}
}

// The MAA mapping keeps x-ms-sevsnpvm-vmpl as the token's number, which
// appraise reads.
func TestMAAVMPLAttribute(t *testing.T) {
	s := newService(t)
	claims := maaClaims()
	claims["x-ms-isolation-tee"].(map[string]any)["x-ms-sevsnpvm-vmpl"] = 1
	c, err := verifyWith(t, MAA, s.sign(t, jose.RS256, claims, nil), setOf(t, s.jwks(t, "RS256")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Attributes["x-ms-sevsnpvm-vmpl"]; got != json.Number("1") {
		t.Errorf("x-ms-sevsnpvm-vmpl %#v, want json.Number 1", got)
	}
}
