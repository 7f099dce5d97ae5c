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
	expires := time.Unix(exp, 0).UTC()
	c.SetAttribute("expires_at", expires.Format(time.RFC3339))
	if !at.Before(expires) {
		c.Fail("token-validity", "expired")
		return attest.Errorf(attest.ErrExpired, "exp", "the token expired at %s", expires.Format(time.RFC3339)).
			WithValues(at.UTC().Format(time.RFC3339), "before "+expires.Format(time.RFC3339)).
			WithFix("request a fresh token, or pass --at with a time inside the token's validity window")
	}
	for _, name := range []string{"nbf", "iat"} {
		v, ok, err := claims.integer(name)
		if err != nil {
			return attest.Malformed(name, "invalid time claim", err)
		}
		if !ok {
			continue
		}
		t := time.Unix(v, 0).UTC()
		c.SetAttribute(map[string]string{"nbf": "not_before", "iat": "issued_at"}[name], t.Format(time.RFC3339))
		if at.Before(t) {
			c.Fail("token-validity", name+" is in the future")
			return attest.Errorf(attest.ErrExpired, name, "the token is not valid before %s: it is not yet valid at the verification time", t.Format(time.RFC3339)).
				WithValues(at.UTC().Format(time.RFC3339), fmt.Sprintf("at or after %s", t.Format(time.RFC3339))).
				WithFix("check the verification time and the clocks of this host and the attestation service")
		}
	}
	c.Pass("token-validity")
	return nil
}
