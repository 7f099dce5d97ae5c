package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// A reference value name whose values have all expired reaches the policy
// as an empty list. The default policy rejects the evidence instead of
// dropping the check, which would accept any value of the pinned claim.
func TestDefaultPolicyExpiredReferenceValues(t *testing.T) {
	tests := []struct {
		name    string
		tee     attest.TEE
		present []string // measurement names the claims carry
		expired string   // the reference value name, after "<tee>.", whose values all expired
	}{
		{name: "snp host data", tee: attest.TEESNP, expired: "host_data"},
		{name: "snp chip id", tee: attest.TEESNP, expired: "chip_id"},
		{name: "tdx rtmr", tee: attest.TEETDX, present: []string{"mrtd", "rtmr0"}, expired: "rtmr0"},
		{name: "tpm pcr", tee: attest.TEETPM, present: []string{"pcr7"}, expired: "pcr7"},
		{name: "nvidia gpu fwid", tee: "nvidia-gpu", present: []string{"fwid"}, expired: "fwid"},
	}
	e := NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := goodClaims()
			claims.TEE = tt.tee
			for _, name := range tt.present {
				claims.SetMeasurement(name, []byte{0xaa})
			}
			key := string(tt.tee) + "." + tt.expired
			refs := map[string][]string{
				string(tt.tee) + ".measurement": {measurement.String()},
				key:                             {},
			}
			d, err := e.Appraise(context.Background(), DefaultAttestation(tt.tee), claims, Config{}, refs)
			if err != nil {
				t.Fatal(err)
			}
			if d.Accepted {
				t.Fatalf("accepted although every value of %s expired", key)
			}
			var found bool
			for _, r := range d.Reasons {
				if r.Rule != "reference-value" || !strings.Contains(r.Message, "has expired") {
					continue
				}
				found = true
				if r.Claim != tt.expired {
					t.Errorf("claim = %s, want %s", r.Claim, tt.expired)
				}
				for _, want := range []string{key, "cloister refvalue add " + key, "cloister refvalue rm " + key} {
					if !strings.Contains(r.Message, want) {
						t.Errorf("message %q lacks %q", r.Message, want)
					}
				}
			}
			if !found {
				t.Errorf("no reason names the expired reference value %s: %+v", key, d.Reasons)
			}
		})
	}
}

// An expired launch measurement gives one reason, which names the expiry
// and the fix, and not also the reason for a name never registered.
func TestDefaultPolicyExpiredMeasurement(t *testing.T) {
	for _, tee := range []attest.TEE{attest.TEESNP, attest.TEETDX} {
		t.Run(string(tee), func(t *testing.T) {
			claims := goodClaims()
			claims.TEE = tee
			key := string(tee) + ".measurement"
			d, err := NewEngine().Appraise(context.Background(), DefaultAttestation(tee), claims, Config{}, map[string][]string{key: {}})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Reasons) != 1 {
				t.Fatalf("reasons %+v, expected one", d.Reasons)
			}
			r := d.Reasons[0]
			if r.Rule != "reference-value" {
				t.Errorf("rule = %s, expected reference-value", r.Rule)
			}
			if r.Claim != "measurement" {
				t.Errorf("claim = %s, expected measurement", r.Claim)
			}
			if !strings.Contains(r.Message, "every registered value of reference value "+key+" has expired") {
				t.Errorf("message %q does not name the expiry", r.Message)
			}
			if !strings.Contains(r.Message, "cloister refvalue add "+key+" <hex>") {
				t.Errorf("message %q does not name the fix", r.Message)
			}
			// The launch measurement is required, so removing it is no fix.
			if strings.Contains(r.Message, "refvalue rm") {
				t.Errorf("message %q suggests removing the required name", r.Message)
			}
		})
	}
}

// A launch measurement without any registered value still gets the reason
// that names the missing registration.
func TestDefaultPolicyUnregisteredMeasurement(t *testing.T) {
	d, err := NewEngine().Appraise(context.Background(), DefaultAttestation(attest.TEESNP), goodClaims(), Config{}, map[string][]string{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Reasons) != 1 {
		t.Fatalf("reasons %+v, expected one", d.Reasons)
	}
	if !strings.Contains(d.Reasons[0].Message, "no reference value snp.measurement is registered") {
		t.Errorf("message %q does not name the missing registration", d.Reasons[0].Message)
	}
}
