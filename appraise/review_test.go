package appraise

import (
	"context"
	"strings"
	"sync"
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

// TestReviewUndeterminedTCBWaivesCollateralOnly passes claims with a
// required check that needs no collateral (the TEE claims of a token were
// not mapped, so debug is unknown): allowing an undetermined TCB must not
// waive it, but it does waive a missing TCB Info.
func TestReviewUndeterminedTCBWaivesCollateralOnly(t *testing.T) {
	unmapped := &attest.Claims{TEE: attest.TEEMAAToken}
	unmapped.Skip("tee-claims", true, "the isolation TEE tdxvm is not mapped")
	if d := Appraise(unmapped, Options{AllowUndeterminedTCB: true}); d.Accepted {
		t.Error("a required check that needs no collateral was waived by AllowUndeterminedTCB")
	}

	missing := &attest.Claims{TEE: attest.TEETDX, TCB: attest.TCB{Status: attest.TCBNotDetermined}}
	missing.SkipCollateral("tcb-info", "missing TCB Info")
	if d := Appraise(missing, Options{AllowUndeterminedTCB: true}); !d.Accepted {
		t.Errorf("missing collateral was not waived by AllowUndeterminedTCB: %+v", d.Reasons)
	}
	if d := Appraise(missing, Options{}); d.Accepted {
		t.Error("missing collateral was accepted by the default appraisal")
	}
}

// TestReviewUnknownCheckResultRejects gives the appraisal required checks
// with a result other than passed, failed or not-checked. Such a check did
// not pass, so it must reject, also when an undetermined TCB is allowed.
func TestReviewUnknownCheckResultRejects(t *testing.T) {
	for _, result := range []attest.CheckResult{"", "skipped", "PASSED"} {
		c := &attest.Claims{TEE: attest.TEETDX}
		c.Checks = append(c.Checks, attest.Check{Name: "tcb-info", Result: result, Required: true, Collateral: true})

		d := Appraise(c, Options{AllowUndeterminedTCB: true})
		if d.Accepted {
			t.Errorf("result %q: a required check that did not pass was accepted", result)
			continue
		}
		if r := d.Reasons[0]; r.Rule != "required-check" || r.Claim != "checks.tcb-info" || r.Value != string(result) {
			t.Errorf("result %q: reason %+v, expected rule required-check on checks.tcb-info", result, r)
		}
	}
}

// noClaimsVerifier is a broken verifier that returns neither claims nor an
// error.
type noClaimsVerifier struct{}

func (noClaimsVerifier) Name() string         { return "appraise-test-no-claims" }
func (noClaimsVerifier) Detect(_ []byte) bool { return false }
func (noClaimsVerifier) Verify(context.Context, attest.Evidence, attest.Options) (*attest.Claims, error) {
	return nil, nil
}

var registerNoClaims sync.Once

// A verifier that proves nothing without reporting an error gets a
// rejection, and so do nil claims given to Appraise.
func TestReviewNoClaimsRejects(t *testing.T) {
	registerNoClaims.Do(func() { attest.Register(noClaimsVerifier{}) })

	res := Evaluate(context.Background(), attest.Evidence{Format: "appraise-test-no-claims", Data: []byte("x")},
		attest.Options{}, Options{})
	if res.Verdict != Reject {
		t.Errorf("verdict = %s, want reject", res.Verdict)
	}
	if res.Error == nil || !strings.Contains(res.Error.Error(), "neither claims nor an error") {
		t.Errorf("error = %v, want one naming the missing claims", res.Error)
	}
	if kind := res.ErrorKind(); kind == "" {
		t.Error("error kind is empty")
	}

	d := Appraise(nil, Options{AllowDebug: true, AllowEmulated: true, AllowUndeterminedTCB: true})
	if d.Accepted {
		t.Error("Appraise accepted nil claims")
	}
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "no verified claims") {
		t.Errorf("Err() = %v, want one naming the missing claims", err)
	}
}
