package appraise

import (
	"context"
	"errors"

	"github.com/cloister-dev/cloister/attest"
)

// Verdict is the final answer on a piece of evidence.
type Verdict string

const (
	Accept Verdict = "accept"
	Reject Verdict = "reject"
)

// Result joins verification and appraisal: the verdict, the claims that
// were proven (also for a rejection after the signatures verified), the
// appraisal reasons and the error that decided a rejection.
type Result struct {
	Verdict Verdict        `json:"verdict"`
	Format  string         `json:"format,omitempty"`
	Claims  *attest.Claims `json:"claims,omitempty"`
	Reasons []Reason       `json:"reasons,omitempty"`
	// Error is the rejection, nil for an accepted result.
	Error error `json:"-"`
}

// ErrorKind returns the kind name of the rejection ("signature", "chain",
// "appraisal", ...), or "" for an accepted result.
func (r *Result) ErrorKind() string {
	if r.Error == nil {
		return ""
	}
	return attest.KindName(r.Error)
}

// Evaluate verifies ev and appraises the claims. Any verification error
// rejects; the claims verified before the error are kept for display, and
// the appraisal still runs on them so that the result names every reason.
func Evaluate(ctx context.Context, ev attest.Evidence, vo attest.Options, ao Options) *Result {
	if ev.Format == "" {
		v, err := attest.Detect(ev.Data)
		if err != nil {
			return &Result{Verdict: Reject, Error: err}
		}
		ev.Format = v.Name()
	}
	claims, err := attest.Verify(ctx, ev, vo)
	if claims == nil && err == nil {
		// A verifier bug must reject, not accept evidence that proved
		// nothing.
		err = attest.Errorf(attest.ErrMalformed, "evidence", "the %s verifier returned neither claims nor an error", ev.Format).
			WithFix("report this as a bug in Cloister with the evidence file attached; the evidence is rejected")
	}
	res := &Result{Format: ev.Format, Claims: claims, Error: err}
	if claims != nil {
		d := Appraise(claims, ao)
		res.Reasons = d.Reasons
		if err == nil {
			res.Error = d.Err()
		} else if !d.Accepted {
			res.Error = errors.Join(err, d.Err())
		}
	}
	res.Verdict = Accept
	if res.Error != nil {
		res.Verdict = Reject
	}
	return res
}
