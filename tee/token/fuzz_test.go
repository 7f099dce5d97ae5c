package token

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// FuzzParse feeds arbitrary bytes to the JWS parser and the claims decoder.
func FuzzParse(f *testing.F) {
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(f, tee) {
			f.Add(c.EvidenceBytes(f))
		}
	}
	algs := []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.PS384, jose.ES256}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data, algs)
		if err == nil && tok.Claims == nil {
			t.Fatal("parsed without claims")
		}
	})
}

// FuzzVerify feeds arbitrary bytes to the three token verifiers, seeded
// with the corpus tokens and verified under the corpus keys and roots.
func FuzzVerify(f *testing.F) {
	set := &collateral.Set{}
	var opts attest.Options
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(f, tee) {
			f.Add(c.EvidenceBytes(f))
			set.Merge(c.Collateral(f))
			if c.Expect.DefaultVerdict == "accept" {
				opts.At = c.Time(f)
			}
		}
	}
	opts.Collateral = set
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []Verifier{GCP, MAA, ITA} {
			v.Detect(data)
			c, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts)
			if err == nil && c == nil {
				t.Fatal("accepted without claims")
			}
		}
	})
}

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
