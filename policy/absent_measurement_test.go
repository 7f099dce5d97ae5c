package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// A reference value registered for a named measurement that the claims do
// not carry rejects the evidence, because skipping it would accept code
// the operator meant to pin. Such claims are common: a TPM quote chooses
// its PCR selection, a TDX 1.0 quote has no MRSERVICETD, and the tokens
// carry some measurements only when the attested TEE reported them.
func TestDefaultPolicyAbsentNamedMeasurement(t *testing.T) {
	value := []byte{0xaa}
	tests := []struct {
		name     string
		tee      attest.TEE
		present  []string // measurement names the claims carry
		ref      string   // the reference value name besides <tee>.measurement
		refValue string
		// wantClaim is the claim of the expected reference-value reason,
		// "" when the claims must be accepted.
		wantClaim string
	}{
		{name: "tpm pcr outside the selection", tee: attest.TEETPM, present: []string{"pcr0", "pcr1"}, ref: "pcr7", refValue: "aa",
			wantClaim: "measurements.pcr7"},
		{name: "azure-vtpm pcr outside the selection", tee: attest.TEEAzureVTPM, present: []string{"pcr0"}, ref: "pcr11", refValue: "aa",
			wantClaim: "measurements.pcr11"},
		{name: "nitro pcr the enclave lacks", tee: attest.TEENitro, present: []string{"pcr0", "pcr8"}, ref: "pcr20", refValue: "aa",
			wantClaim: "measurements.pcr20"},
		{name: "tdx mrservicetd of a tdx 1.0 quote", tee: attest.TEETDX, present: []string{"mrtd", "rtmr0"}, ref: "mrservicetd", refValue: "aa",
			wantClaim: "measurements.mrservicetd"},
		{name: "sgx misspelt mrsigner", tee: attest.TEESGX, present: []string{"mrenclave", "mrsigner"}, ref: "mr_signer", refValue: "aa",
			wantClaim: "measurements.mr_signer"},
		{name: "maa-token idkeydigest not in the token", tee: attest.TEEMAAToken, present: []string{"launch_measurement"}, ref: "idkeydigest", refValue: "aa",
			wantClaim: "measurements.idkeydigest"},
		{name: "ita-token mrsigner not in the token", tee: attest.TEEITAToken, present: []string{"mrenclave"}, ref: "mrsigner", refValue: "aa",
			wantClaim: "measurements.mrsigner"},
		{name: "ita-token tdx name for an sgx token", tee: attest.TEEITAToken, present: []string{"mrenclave", "mrsigner"}, ref: "mrtd", refValue: "aa",
			wantClaim: "measurements.mrtd"},
		{name: "gcp-token digest under another name", tee: attest.TEEGCPToken, present: []string{"image_digest"}, ref: "digest", refValue: "aa",
			wantClaim: "measurements.digest"},
		{name: "psa software component not reported", tee: attest.TEEPSA, present: []string{"implementation_id", "sw_spe"}, ref: "sw_custom", refValue: "aa",
			wantClaim: "measurements.sw_custom"},
		{name: "cca rem the realm lacks", tee: attest.TEECCA, present: []string{"rim", "rem0"}, ref: "rem9", refValue: "aa",
			wantClaim: "measurements.rem9"},
		{name: "snp named measurement absent", tee: attest.TEESNP, ref: "id_key_digest", refValue: "aa",
			wantClaim: "measurements.id_key_digest"},
		{name: "composite gpu name with prefix", tee: "composite", present: []string{"gpu0/fwid"}, ref: "gpu0/fwid", refValue: "aa",
			wantClaim: "measurements.gpu0/fwid"},

		{name: "tdx rtmr present", tee: attest.TEETDX, present: []string{"mrtd", "rtmr0"}, ref: "rtmr0", refValue: "AA"},
		{name: "tpm pcr present", tee: attest.TEETPM, present: []string{"pcr0", "pcr7"}, ref: "pcr7", refValue: "aa"},
		{name: "composite fwid of every gpu", tee: "composite", present: []string{"gpu0/fwid", "gpu1/fwid"}, ref: "fwid", refValue: "aa"},
		{name: "host data needs no measurement", tee: attest.TEESNP, ref: "host_data", refValue: strings.Repeat("00", 32)},
	}
	e := NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := goodClaims()
			claims.TEE = tt.tee
			for _, name := range tt.present {
				claims.SetMeasurement(name, value)
			}
			refs := map[string][]string{
				string(tt.tee) + ".measurement": {measurement.String()},
				string(tt.tee) + "." + tt.ref:   {tt.refValue},
			}
			d, err := e.Appraise(context.Background(), DefaultAttestation(tt.tee), claims, Config{}, refs)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantClaim == "" {
				if !d.Accepted {
					t.Errorf("rejected with %+v", d.Reasons)
				}
				return
			}
			if d.Accepted {
				t.Fatalf("accepted although reference value %s.%s names no measurement of the claims", tt.tee, tt.ref)
			}
			if len(d.Reasons) != 1 {
				t.Fatalf("reasons %+v, want one", d.Reasons)
			}
			r := d.Reasons[0]
			if r.Rule != "reference-value" {
				t.Errorf("rule = %s, want reference-value", r.Rule)
			}
			if r.Claim != tt.wantClaim {
				t.Errorf("claim = %s, want %s", r.Claim, tt.wantClaim)
			}
			if r.Expected != tt.refValue {
				t.Errorf("expected = %q, want %q", r.Expected, tt.refValue)
			}
			name := string(tt.tee) + "." + tt.ref
			for _, want := range []string{name, "cloister refvalue rm " + name} {
				if !strings.Contains(r.Message, want) {
					t.Errorf("message %q lacks %q", r.Message, want)
				}
			}
		})
	}
}
