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
	for _, tok := range newShapeTokens(f) {
		f.Add([]byte(tok.token))
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
// with the corpus tokens, verified under the corpus keys and roots, and
// with test tokens of the Intel Trust Authority version 2 and MAA TDX and
// SGX shapes, verified under the test keys at the test time.
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
	for _, tok := range newShapeTokens(f) {
		f.Add([]byte(tok.token))
	}
	s := newService(f).withChain(f)
	testOpts := attest.Options{At: testNow, Collateral: setOf(f, s.jwks(f, ""), s.chain[2].Raw)}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []attest.Options{opts, testOpts} {
			for _, v := range []Verifier{GCP, MAA, ITA} {
				v.Detect(data)
				c, err := v.Verify(context.Background(), attest.Evidence{Data: data}, o)
				if err == nil && c == nil {
					t.Fatal("accepted without claims")
				}
			}
		}
	})
}

// FuzzMapClaims feeds arbitrary claims sets to the Intel Trust Authority
// and MAA claim mappings, seeded with the corpus tokens' claims and the
// version 2, TDX and SGX shapes. A mapping that succeeds must have
// checked the sizes of the measurements it kept.
func FuzzMapClaims(f *testing.F) {
	for _, tee := range tokenTEEs {
		for _, c := range corpus.Cases(f, tee) {
			tok, err := Parse(c.EvidenceBytes(f), inspectAlgorithms)
			if err != nil {
				continue
			}
			f.Add(tok.JWS.UnsafePayloadWithoutVerification())
		}
	}
	for _, tok := range newShapeTokens(f) {
		payload, err := json.Marshal(tok.claims)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload)
	}
	sizes := map[string]int{"mrtd": tdxMeasurementSize, "rtmr3": tdxMeasurementSize, "mrenclave": sgxMeasurementSize, "mrsigner": sgxMeasurementSize}
	f.Fuzz(func(t *testing.T, payload []byte) {
		claims, err := decodeClaims(payload)
		if err != nil {
			return
		}
		for _, mapClaims := range []func(claimSet, *attest.Claims) ([][]byte, error){mapITAClaims, mapMAAClaims} {
			c := &attest.Claims{}
			nonces, err := mapClaims(claimSet(claims), c)
			if err != nil {
				continue
			}
			for name, size := range sizes {
				if v, ok := c.Measurements[name]; ok && len(v) != size {
					t.Errorf("measurement %s has %d bytes, want %d", name, len(v), size)
				}
			}
			if len(c.ReportData) != 0 && len(c.ReportData) != reportDataSize {
				t.Errorf("report data has %d bytes, want %d", len(c.ReportData), reportDataSize)
			}
			if len(nonces) > 0 && string(nonces[0]) != string(c.Nonce) {
				t.Errorf("returned nonce %x differs from the claims' nonce %x", nonces[0], c.Nonce)
			}
		}
	})
}

// shapeToken is a signed test token and the claims it carries.
type shapeToken struct {
	claims map[string]any
	token  string
}

// newShapeTokens returns signed tokens of the Intel Trust Authority version
// 2 and MAA TDX and SGX shapes, including the ambiguous ones that must be
// rejected. The ITA tokens are signed under the chained test key, the MAA
// tokens under the bare one.
func newShapeTokens(tb testing.TB) []shapeToken {
	tb.Helper()
	ambiguous := itaV2Claims(tb, "tdx")
	ambiguous["attester_type"] = "TDX"
	twoCPUs := itaV2Claims(tb, "tdx")
	twoCPUs["sgx"] = member(itaV2Claims(tb, "sgx"), "sgx")
	gpu := itaV2Claims(tb, "tdx")
	gpu["nvgpu"] = nvgpuClaims()

	ita := newService(tb).withChain(tb)
	maa := newService(tb)
	var out []shapeToken
	for _, claims := range []map[string]any{itaV2Claims(tb, "tdx"), itaV2Claims(tb, "sgx"), gpu, ambiguous, twoCPUs} {
		out = append(out, shapeToken{claims, ita.sign(tb, jose.PS384, claims, nil)})
	}
	for _, claims := range []map[string]any{maaDirectTDXClaims(), maaCVMTDXClaims(), maaSGXClaims()} {
		out = append(out, shapeToken{claims, maa.sign(tb, jose.RS256, claims, nil)})
	}
	return out
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

func TestCheckTimesFutureMessages(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	unix := func(d time.Duration) json.Number { return json.Number(strconv.FormatInt(at.Add(d).Unix(), 10)) }
	exp := unix(time.Hour)
	cases := []struct {
		name   string
		claims claimSet
		field  string
		want   []string
		reject []string
	}{
		{"future iat", claimSet{"exp": exp, "iat": unix(90 * time.Second)}, "iat",
			[]string{"iat (issued at) 2026-01-01T00:01:30Z is 1m30s after the verification time", "skewed", "NTP", "--at"},
			[]string{"not valid before"}},
		{"future iat and nbf", claimSet{"exp": exp, "iat": unix(time.Minute), "nbf": unix(time.Minute)}, "iat",
			[]string{"iat (issued at)", "skewed"}, nil},
		{"future nbf", claimSet{"exp": exp, "iat": unix(-time.Minute), "nbf": unix(time.Minute)}, "nbf",
			[]string{"not valid before 2026-01-01T00:01:00Z"}, []string{"iat"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkTimes(&attest.Claims{}, tc.claims, at)
			if !errors.Is(err, attest.ErrExpired) {
				t.Fatalf("checkTimes = %v, want ErrExpired", err)
			}
			var ae *attest.Error
			if !errors.As(err, &ae) || ae.Field != tc.field {
				t.Errorf("error %v, want field %s", err, tc.field)
			}
			for _, part := range tc.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
			for _, part := range tc.reject {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error %q contains %q", err, part)
				}
			}
		})
	}
}
