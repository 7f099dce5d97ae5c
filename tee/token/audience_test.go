package token

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
)

func TestAudience(t *testing.T) {
	s := newService(t)
	set := setOf(t, s.jwks(t, "RS256"))
	listed := gcpClaims()
	listed["aud"] = []string{"https://other.example", "https://relying-party.example"}
	missing := gcpClaims()
	delete(missing, "aud")
	numeric := gcpClaims()
	numeric["aud"] = 7

	cases := []struct {
		name     string
		claims   map[string]any
		audience string
		wantErr  bool
		want     string // part of the error, when not empty
	}{
		{name: "no expected audience", claims: gcpClaims()},
		{name: "matching audience", claims: gcpClaims(), audience: "https://relying-party.example"},
		{name: "audience in list", claims: listed, audience: "https://relying-party.example"},
		{name: "other audience", claims: gcpClaims(), audience: "https://attacker.example", wantErr: true},
		{name: "no aud claim", claims: missing, audience: "https://relying-party.example", wantErr: true,
			want: `no aud claim of strings, but audience "https://relying-party.example" is expected`},
		{name: "numeric aud claim", claims: numeric, audience: "https://relying-party.example", wantErr: true,
			want: "no aud claim of strings"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := s.sign(t, jose.RS256, tc.claims, nil)
			_, err := GCP.Verify(context.Background(), attest.Evidence{Data: []byte(token)},
				attest.Options{At: testNow, Collateral: set, Audience: tc.audience})
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, attest.ErrBinding) {
				t.Fatalf("error %v, want a binding error", err)
			}
			if !strings.Contains(err.Error(), "audience") {
				t.Errorf("error %q does not name the audience", err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
