package ratls

import (
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// sameIdentity compares the boot-time registers of a TDX guest and the
// signer of an SGX enclave, and ignores registers extended at run time.
func TestSameIdentityNamedMeasurements(t *testing.T) {
	claims := func(tee attest.TEE, name string, value byte) *attest.Claims {
		c := &attest.Claims{TEE: tee, Measurement: []byte{1}}
		for _, n := range []string{"rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrconfigid", "mrowner", "mrownerconfig", "mrsigner", "pcr10"} {
			c.SetMeasurement(n, []byte{0})
		}
		c.SetMeasurement(name, []byte{value})
		return c
	}
	type testCase struct {
		tee     attest.TEE
		name    string
		wantErr bool
	}
	cases := []testCase{{attest.TEETDX, "rtmr3", false}, {attest.TEETPM, "pcr10", false}}
	for tee, names := range identityMeasurements {
		for _, name := range names {
			cases = append(cases, testCase{tee, name, true})
		}
	}
	for _, tc := range cases {
		err := sameIdentity(claims(tc.tee, tc.name, 0), claims(tc.tee, tc.name, 7))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s %s differs: error %v, want error %v", tc.tee, tc.name, err, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s %s differs: error %v does not name it", tc.tee, tc.name, err)
		}
	}
}
