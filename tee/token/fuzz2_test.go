package token

import (
	"testing"

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
