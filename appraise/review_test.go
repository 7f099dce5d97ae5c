package appraise

import (
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// TestReviewFailedCheckRejects gives the appraisal claims in which the
// verifier recorded a failed check without returning an error: a check
// that failed must never count as passed.
func TestReviewFailedCheckRejects(t *testing.T) {
	c := &attest.Claims{TEE: attest.TEETPM}
	c.Pass("quote-signature")
	c.Fail("ak-attributes", "objectAttributes restricted=false")

	d := Appraise(c, Options{})
	if d.Accepted {
		t.Fatal("claims with a failed check were accepted")
	}
	if d.Reasons[0].Rule != "failed-check" || d.Reasons[0].Claim != "checks.ak-attributes" {
		t.Errorf("reason %+v, expected rule failed-check on checks.ak-attributes", d.Reasons[0])
	}
}
