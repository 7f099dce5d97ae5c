package token

import (
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
)

// TestHeaderExtensionsRejected rejects tokens whose protected header
// carries crit or b64 (RFC 7797). None of the three services sets them. With
// b64 false, go-jose verifies the signature over the decoded payload
// instead of the compact text, and an unknown crit name made the error
// read as a bad signature.
func TestHeaderExtensionsRejected(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, "RS256"))
	cases := []struct {
		name    string
		headers map[jose.HeaderKey]any
		want    string
	}{
		{"b64 false", map[jose.HeaderKey]any{"b64": false, "crit": []string{"b64"}}, `"b64"`},
		{"b64 true", map[jose.HeaderKey]any{"b64": true}, `"b64"`},
		{"unknown crit", map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1}, `"crit"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyWith(t, GCP, s.sign(t, jose.RS256, gcpClaims(), tc.headers), set, nil)
			expectRejected(t, err, attest.ErrMalformed, tc.want)
		})
	}
}

// TestHeaderKeysIgnored verifies that a token cannot name its own key: the
// jwk, jku and x5u header parameters are never used, so a token signed by
// another key fails even when its header embeds that key.
func TestHeaderKeysIgnored(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, "RS256"))
	attacker := &testService{key: rsaKey(t, 1), kid: s.kid}
	embedded := jose.JSONWebKey{Key: &attacker.key.PublicKey, KeyID: s.kid, Algorithm: "RS256", Use: "sig"}
	cases := []struct {
		name    string
		headers map[jose.HeaderKey]any
	}{
		{"jwk", map[jose.HeaderKey]any{"jwk": embedded}},
		{"jku", map[jose.HeaderKey]any{"jku": "https://attacker.example/jwks"}},
		{"x5u", map[jose.HeaderKey]any{"x5u": "https://attacker.example/chain.pem"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyWith(t, GCP, attacker.sign(t, jose.RS256, gcpClaims(), tc.headers), set, nil)
			if !errors.Is(err, attest.ErrSignature) {
				t.Errorf("token signed by a key from its own header: error %v, want a signature error", err)
			}
			if _, err := verifyWith(t, GCP, s.sign(t, jose.RS256, gcpClaims(), tc.headers), set, nil); err != nil {
				t.Errorf("token of the JWKS key with a %s header: %v", tc.name, err)
			}
		})
	}
}
