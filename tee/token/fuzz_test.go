package token

import (
	"context"
	"testing"

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
