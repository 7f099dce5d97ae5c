package ear

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary bearer tokens to Verify and VerifyText of a
// verifier that remembers the tokens its signer issued. Only the issued
// token may verify; nothing may panic.
func FuzzVerify(f *testing.F) {
	s := newTestSigner(f)
	s.Issued = &Issued{}
	now := time.Unix(1_800_000_000, 0)
	tok, err := s.Sign(sampleResult(), now)
	if err != nil {
		f.Fatal(err)
	}
	v := &Verifier{Keys: s.JWKS(), Issuer: s.Issuer, Issued: s.Issued}
	f.Add(tok)
	f.Add(tok[:len(tok)/2])
	f.Add(strings.Replace(tok, ".", "..", 1))
	f.Add("e30.e30.")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		got, err := v.Verify(token, now)
		if err == nil && token != tok {
			t.Fatalf("a token the signer did not issue verified: %q (claims %v)", token, got.Claims)
		}
		_, text, err := v.VerifyText(token, now)
		if err == nil && token != tok {
			t.Fatalf("VerifyText accepted a token the signer did not issue: %q (claims %s)", token, text)
		}
	})
}
