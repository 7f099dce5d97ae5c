package kbs

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
	_ "github.com/cloister-dev/cloister/tee/dcap"
	_ "github.com/cloister-dev/cloister/tee/nitro"
	_ "github.com/cloister-dev/cloister/tee/snp"
)

// The token claims cut from the encoding of the claims equal the encoding
// of the claims without chain and collateral, for the first accepted
// evidence of each TEE in the corpus.
func TestTokenClaimsOfMatchesEncoding(t *testing.T) {
	tested := 0
	for _, tee := range []string{"snp", "tdx", "sgx", "nitro"} {
		if _, err := os.Stat(filepath.Join(corpus.Dir(t), tee)); err != nil {
			continue
		}
		c, ok := corpus.FirstAccepted(t, tee, nil)
		if !ok {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			claims, err := attest.Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, c.Options(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(claims.Chain) == 0 {
				t.Fatal("the claims have no chain, so nothing is cut")
			}
			full, err := json.Marshal(claims)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(tokenClaims(claims))
			if err != nil {
				t.Fatal(err)
			}

			got, ok := tokenClaimsOf(&Verdict{Claims: claims, ClaimsJSON: full}).(json.RawMessage)
			if !ok {
				t.Fatal("tokenClaimsOf did not cut the encoding")
			}
			if !bytes.Equal(got, want) {
				t.Errorf("tokenClaimsOf =\n%s\nencoding of tokenClaims =\n%s", got, want)
			}
		})
		tested++
	}
	if tested == 0 {
		t.Skip("no accepted corpus evidence to take claims from")
	}
}
