package nvgpu

import (
	"time"

	"github.com/cloister-dev/cloister/collateral"
)

// ocspClockSkew is how far after the verification time an OCSP response's
// thisUpdate may lie, and still count as current at that time. A responder
// that signs on request stamps thisUpdate with its own clock, which may run
// a little ahead of the verifier's.
const ocspClockSkew = 5 * time.Minute

// ocspTiming places the period of a SingleResponse relative to the
// verification time and the current time.
type ocspTiming int

const (
	// ocspCurrent is a response whose thisUpdate is at most ocspClockSkew
	// after the verification time and whose period has not ended by then.
	ocspCurrent ocspTiming = iota
	// ocspExpired is a response whose period ended before the
	// verification time.
	ocspExpired
	// ocspNewer is a response whose thisUpdate is more than ocspClockSkew
	// after the verification time, such as one fetched now for a
	// verification at a past time (--at).
	ocspNewer
	// ocspFuture is a response whose thisUpdate is more than
	// ocspClockSkew after the current time, so that a clock is wrong.
	ocspFuture
)

// ocspTimingOf places s relative to the verification time at and the
// current time now, in this order:
//   - future when thisUpdate is more than ocspClockSkew after now. No
//     responder can have produced it yet, so the verifier's clock or the
//     responder's is wrong, and no time comparison with it can be trusted,
//     whatever the verification time.
//   - newer when thisUpdate is more than ocspClockSkew after at. The
//     responder produced it after the verification time, so it shows the
//     status at its thisUpdate and not at at, except that a revocation at
//     or before at still counts (see ocspStatus.revokes).
//   - expired when at is after the end of its period (ValidUntil).
//   - current otherwise.
//
// The rule is the same for responses passed as collateral and fetched
// ones.
func ocspTimingOf(s collateral.OCSPSingleResponse, at, now time.Time) ocspTiming {
	earliest := s.ThisUpdate.Add(-ocspClockSkew)
	switch {
	case now.Before(earliest):
		return ocspFuture
	case at.Before(earliest):
		return ocspNewer
	case at.After(s.ValidUntil()):
		return ocspExpired
	}
	return ocspCurrent
}
