package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// The default nvidia-gpu policy accepts a GPU when its rim check passed or
// when reference values for its measurements are registered, and rejects
// it with a reason on checks.rim when neither vouches for its firmware.
func TestDefaultPolicyGPUVouchedFor(t *testing.T) {
	gpuClaims := func(rim attest.CheckResult) *attest.Claims {
		c := &attest.Claims{
			TEE:         attest.TEENVGPU,
			TrustAnchor: attest.TrustAnchorRef{Kind: attest.AnchorVendorRoot, Name: "NVIDIA Device Identity CA"},
			Checks:      []attest.Check{{Name: "spdm-signature", Result: attest.CheckPassed, Required: true}},
		}
		c.SetMeasurement("fwid", []byte{0xf1})
		c.SetMeasurement("block1", []byte{0xb1})
		if rim != "" {
			c.Checks = append(c.Checks, attest.Check{Name: "rim", Result: rim})
		}
		return c
	}
	tests := []struct {
		name      string
		rim       attest.CheckResult
		refs      map[string][]string
		wantRules []string
	}{
		{name: "rim passed", rim: attest.CheckPassed},
		{name: "rim not checked", rim: attest.CheckNotChecked, wantRules: []string{"reference-value"}},
		{name: "no rim check", wantRules: []string{"reference-value"}},
		{name: "rim not checked fwid registered", rim: attest.CheckNotChecked,
			refs: map[string][]string{"nvidia-gpu.fwid": {"F1"}}},
		{name: "rim not checked block registered", rim: attest.CheckNotChecked,
			refs: map[string][]string{"nvidia-gpu.block1": {"b1"}}},
		{name: "rim not checked fwid off", rim: attest.CheckNotChecked,
			refs: map[string][]string{"nvidia-gpu.fwid": {"f2"}}, wantRules: []string{"measurement"}},
		{name: "rim failed", rim: attest.CheckFailed, wantRules: []string{"failed-check"}},
		{name: "other TEE refs only", rim: attest.CheckNotChecked,
			refs: map[string][]string{"snp.fwid": {"f1"}}, wantRules: []string{"reference-value"}},
	}
	e := NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Appraise(context.Background(), DefaultAttestation(attest.TEENVGPU), gpuClaims(tt.rim), Config{}, tt.refs)
			if err != nil {
				t.Fatal(err)
			}
			got := rulesOf(d)
			slices.Sort(got)
			if !slices.Equal(got, tt.wantRules) {
				t.Errorf("rules = %v, want %v (reasons %+v)", got, tt.wantRules, d.Reasons)
			}
			if d.Accepted != (len(tt.wantRules) == 0) {
				t.Errorf("accepted = %v with rules %v", d.Accepted, got)
			}
		})
	}
}

// The reason for a GPU that nothing vouches for names the rim check's
// result and both ways to fix it.
func TestDefaultPolicyGPUVouchReason(t *testing.T) {
	c := &attest.Claims{TEE: attest.TEENVGPU, TrustAnchor: attest.TrustAnchorRef{Kind: attest.AnchorVendorRoot, Name: "NVIDIA Device Identity CA"},
		Checks: []attest.Check{{Name: "rim", Result: attest.CheckNotChecked}}}
	c.SetMeasurement("fwid", []byte{0xf1})

	d, err := NewEngine().Appraise(context.Background(), DefaultAttestation(attest.TEENVGPU), c, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Reasons) != 1 {
		t.Fatalf("reasons = %+v, want one", d.Reasons)
	}
	r := d.Reasons[0]
	if r.Claim != "checks.rim" {
		t.Errorf("claim = %q, want checks.rim", r.Claim)
	}
	if r.Value != "not-checked" {
		t.Errorf("value = %q, want not-checked", r.Value)
	}
	for _, want := range []string{"--collateral nvidia-gpu=DIR", "cloister refvalue add nvidia-gpu.fwid"} {
		if !strings.Contains(r.Message, want) {
			t.Errorf("message %q does not contain %q", r.Message, want)
		}
	}
}

// The default composite policy applies the same rule to each GPU of
// composite evidence, with composite.fwid as the reference value that can
// vouch instead of the rim check.
func TestDefaultPolicyCompositeGPUVouchedFor(t *testing.T) {
	compositeClaims := func(rims ...attest.CheckResult) *attest.Claims {
		c := goodClaims()
		c.TEE = "composite"
		for i, rim := range rims {
			c.Checks = append(c.Checks, attest.Check{Name: fmt.Sprintf("gpu%d/rim", i), Result: rim})
			c.SetMeasurement(fmt.Sprintf("gpu%d/fwid", i), []byte{0xf1})
		}
		return c
	}
	refs := func(extra map[string][]string) map[string][]string {
		r := map[string][]string{"composite.measurement": {measurement.String()}}
		maps.Copy(r, extra)
		return r
	}
	tests := []struct {
		name       string
		rims       []attest.CheckResult
		refs       map[string][]string
		wantClaims []string
	}{
		{name: "no GPU"},
		{name: "both rims passed", rims: []attest.CheckResult{attest.CheckPassed, attest.CheckPassed}},
		{name: "second rim not checked", rims: []attest.CheckResult{attest.CheckPassed, attest.CheckNotChecked},
			wantClaims: []string{"checks.gpu1/rim"}},
		{name: "rims not checked fwid registered", rims: []attest.CheckResult{attest.CheckNotChecked, attest.CheckNotChecked},
			refs: map[string][]string{"composite.fwid": {"f1"}}},
		{name: "rims not checked fwid off", rims: []attest.CheckResult{attest.CheckNotChecked, attest.CheckNotChecked},
			refs: map[string][]string{"composite.fwid": {"f2"}}, wantClaims: []string{"measurements.gpu0/fwid", "measurements.gpu1/fwid"}},
		{name: "rim failed", rims: []attest.CheckResult{attest.CheckFailed}, wantClaims: []string{"checks.gpu0/rim"}},
	}
	e := NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Appraise(context.Background(), DefaultAttestation("composite"), compositeClaims(tt.rims...), Config{}, refs(tt.refs))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range d.Reasons {
				got = append(got, r.Claim)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.wantClaims) {
				t.Errorf("reason claims = %v, want %v (reasons %+v)", got, tt.wantClaims, d.Reasons)
			}
		})
	}
}
