package token

import (
	"slices"
	"strings"

	"github.com/cloister-dev/cloister/attest"
)

// checkAudience requires want among the token's aud claim (a string or a
// list of strings, RFC 7519 section 4.1.3) when the caller names one. With
// no expected audience the claim is reported, not judged.
func checkAudience(c *attest.Claims, claims claimSet, want string) error {
	var auds []string
	if one, ok, err := claims.text("aud"); err == nil && ok {
		auds = []string{one}
	} else if list, ok, err := claims.textList("aud"); err == nil && ok {
		auds = list
	}
	if want == "" {
		c.Skip("audience", false, "no expected audience was given")
		return nil
	}
	if slices.Contains(auds, want) {
		c.Pass("audience")
		return nil
	}
	if len(auds) == 0 {
		// A missing aud, or one that is neither a string nor a list of
		// strings, names no audience at all.
		c.Fail("audience", "the token names no audience")
		return attest.Errorf(attest.ErrBinding, "aud", "the token has no aud claim of strings, but audience %q is expected", want).
			WithFix("request a token for this relying party's audience")
	}
	c.Fail("audience", "the token is for another audience")
	return attest.Errorf(attest.ErrBinding, "aud", "the token's audience %q does not include the expected audience", strings.Join(auds, ", ")).
		WithValues(strings.Join(auds, ", "), want).
		WithFix("request a token for this relying party's audience")
}
