package token

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// FuzzParseJWKS decodes JWK Sets and single JWKs, which a token service
// publishes and collateral directories carry, seeded with the JWKS of every
// token case. Every key returned is a valid public key.
func FuzzParseJWKS(f *testing.F) {
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(f, tee) {
			for _, it := range c.Collateral(f).OfKind(collateral.KindJWKS) {
				f.Add(it.Raw)
			}
		}
	}
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"","y":""}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for i, k := range parseJWKS(raw) {
			if !k.IsPublic() || !k.Valid() {
				t.Errorf("key %d (kid %q) is not a valid public key", i, k.KeyID)
			}
		}
	})
}

// TestCheckTimesOutOfRange rejects time claims that time.Unix would wrap:
// an exp of the minimum int64 would otherwise read as a date far in the
// future, and an nbf of the maximum int64 as one far in the past.
func TestCheckTimesOutOfRange(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	valid := json.Number(strconv.FormatInt(at.Add(time.Hour).Unix(), 10))
	cases := []struct {
		name   string
		claims claimSet
		field  string
	}{
		{"exp min int64", claimSet{"exp": json.Number(strconv.FormatInt(math.MinInt64, 10))}, "exp"},
		{"exp max int64", claimSet{"exp": json.Number(strconv.FormatInt(math.MaxInt64, 10))}, "exp"},
		{"exp negative", claimSet{"exp": json.Number("-1")}, "exp"},
		{"nbf max int64", claimSet{"exp": valid, "nbf": json.Number(strconv.FormatInt(math.MaxInt64, 10))}, "nbf"},
		{"iat after 9999", claimSet{"exp": valid, "iat": json.Number("253402300800")}, "iat"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkTimes(&attest.Claims{}, tc.claims, at)
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("checkTimes = %v, want a malformed error", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name the claim %s", err, tc.field)
			}
		})
	}

	if err := checkTimes(&attest.Claims{}, claimSet{"exp": valid, "nbf": json.Number("0")}, at); err != nil {
		t.Errorf("checkTimes with exp an hour after at and nbf 0 = %v, want nil", err)
	}
}
