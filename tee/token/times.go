package token

import (
	"fmt"
	"time"

	"github.com/cloister-dev/cloister/attest"
)

// checkTimes checks the registered time claims at the verification time:
// exp is required and must be after at, nbf and iat, when present, must not
// be after at. No clock skew is allowed, because the verification time is
// the caller's choice (--at) and a skew allowance would widen every window.
func checkTimes(c *attest.Claims, claims claimSet, at time.Time) error {
	exp, ok, err := claims.integer("exp")
	if err != nil {
		return attest.Malformed("exp", "invalid expiry claim", err)
	}
	if !ok {
		return attest.Errorf(attest.ErrMalformed, "exp", "the token has no expiry claim, so it would be valid forever").
			WithFix("pass a token as the attestation service issued it")
	}
	if err := checkNumericDate("exp", exp); err != nil {
		return err
	}
	expires := time.Unix(exp, 0).UTC()
	c.SetAttribute("expires_at", expires.Format(time.RFC3339))
	if !at.Before(expires) {
		c.Fail("token-validity", "expired")
		return attest.Errorf(attest.ErrExpired, "exp", "the token expired at %s", expires.Format(time.RFC3339)).
			WithValues(at.UTC().Format(time.RFC3339), "before "+expires.Format(time.RFC3339)).
			WithFix("request a fresh token, or pass --at with a time inside the token's validity window")
	}
	// iat goes first: when both lie in the future, a skewed clock explains
	// both, and the iat message names that cause.
	for _, name := range []string{"iat", "nbf"} {
		v, ok, err := claims.integer(name)
		if err != nil {
			return attest.Malformed(name, "invalid time claim", err)
		}
		if !ok {
			continue
		}
		if err := checkNumericDate(name, v); err != nil {
			return err
		}
		t := time.Unix(v, 0).UTC()
		c.SetAttribute(map[string]string{"nbf": "not_before", "iat": "issued_at"}[name], t.Format(time.RFC3339))
		if at.Before(t) {
			c.Fail("token-validity", name+" is in the future")
			return futureTimeError(name, t, at)
		}
	}
	c.Pass("token-validity")
	return nil
}

// futureTimeError rejects a token whose nbf or iat (time t) is after the
// verification time at. An iat after the verification time means a skewed
// clock or an early --at, so its message names the issuance time, how far
// ahead it is, and both fixes.
func futureTimeError(name string, t, at time.Time) error {
	reason := fmt.Sprintf("the token is not valid before %s: it is not yet valid at the verification time", t.Format(time.RFC3339))
	fix := "check the verification time and the clocks of this host and the attestation service"
	if name == "iat" {
		reason = fmt.Sprintf("the token's iat (issued at) %s is %s after the verification time, so the token is dated in the future",
			t.Format(time.RFC3339), t.Sub(at).Round(time.Second))
		fix = "when the clock of this host or of the attestation service is skewed, synchronize this host's clock (NTP). Otherwise pass --at with a time at or after the iat"
	}
	return attest.Errorf(attest.ErrExpired, name, "%s", reason).
		WithValues(at.UTC().Format(time.RFC3339), fmt.Sprintf("at or after %s", t.Format(time.RFC3339))).
		WithFix(fix)
}

// maxNumericDate is 9999-12-31T23:59:59Z, the last second RFC 3339 can
// write.
const maxNumericDate = 253402300799

// checkNumericDate rejects a time claim outside 1970 to 9999, because
// time.Unix wraps values near the int64 limits, which would turn an
// expiry far in the past into one far in the future.
func checkNumericDate(name string, v int64) error {
	if v < 0 || v > maxNumericDate {
		return attest.Errorf(attest.ErrMalformed, name, "the %s claim %d is outside 0 to %d seconds since 1970", name, v, int64(maxNumericDate)).
			WithFix("pass a token as the attestation service issued it")
	}
	return nil
}
