package attest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
	_ "github.com/cloister-dev/cloister/tee/azurevtpm"
	_ "github.com/cloister-dev/cloister/tee/cca"
	_ "github.com/cloister-dev/cloister/tee/dcap"
	_ "github.com/cloister-dev/cloister/tee/nitro"
	_ "github.com/cloister-dev/cloister/tee/nvgpu"
	_ "github.com/cloister-dev/cloister/tee/psa"
	_ "github.com/cloister-dev/cloister/tee/snp"
	_ "github.com/cloister-dev/cloister/tee/token"
	_ "github.com/cloister-dev/cloister/tee/tpm"
)

// reviewFlipPositions returns up to about 160 byte positions of an n-byte
// input: the first and last 32 and evenly spaced ones between.
func reviewFlipPositions(n int) []int {
	var out []int
	for i := 0; i < n && i < 32; i++ {
		out = append(out, i)
	}
	step := max(1, n/96)
	for i := 32; i < n-32; i += step {
		out = append(out, i)
	}
	for i := max(32, n-32); i < n; i++ {
		out = append(out, i)
	}
	return out
}

// reviewClaimsJSON encodes the proven claims for comparison: without the
// checks and warnings, which reviewNewPasses compares, and without the
// TPM event log summary. go-eventlog rejects a Secure Boot event whose data
// does not match its digest, and the summary then records that error in
// place of the fact, so an altered event changes the summary.
func reviewClaimsJSON(t *testing.T, c *attest.Claims) []byte {
	t.Helper()
	clone := *c
	clone.Checks, clone.Warnings = nil, nil
	clone.Attributes = maps.Clone(c.Attributes)
	delete(clone.Attributes, "event_log")
	out, err := json.Marshal(&clone)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// reviewNewPasses returns the checks that passed in got but not in want.
func reviewNewPasses(got, want *attest.Claims) []string {
	passed := map[string]bool{}
	for _, ch := range want.Checks {
		if ch.Result == attest.CheckPassed {
			passed[ch.Name] = true
		}
	}
	var out []string
	for _, ch := range got.Checks {
		if ch.Result == attest.CheckPassed && !passed[ch.Name] {
			out = append(out, ch.Name)
		}
	}
	return out
}

// TestReviewAlteredEvidenceRejected flips one bit at a time in evidence
// that verifies. The altered evidence must be rejected, or verify to the
// same claims with no check passing that did not pass before. A changed
// byte that changes a claim and still verifies is a claim that no
// signature covers.
func TestReviewAlteredEvidenceRejected(t *testing.T) {
	for _, tee := range []string{"snp", "sgx", "tdx", "nitro", "nvidia-gpu", "tpm", "azure-vtpm", "psa", "cca", "gcp-token", "maa-token", "ita-token"} {
		for _, c := range corpus.Cases(t, tee) {
			if c.Negative() || c.Expect.DefaultVerdict != "accept" {
				continue
			}
			t.Run(c.Name, func(t *testing.T) {
				data, opts := c.EvidenceBytes(t), c.Options(t)
				v, err := attest.Detect(data)
				if err != nil {
					t.Fatal(err)
				}
				claims, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts)
				if err != nil {
					t.Skipf("the unaltered evidence does not verify: %v", err)
				}
				want := reviewClaimsJSON(t, claims)
				for _, pos := range reviewFlipPositions(len(data)) {
					altered := bytes.Clone(data)
					altered[pos] ^= 0x01
					got, err := v.Verify(context.Background(), attest.Evidence{Data: altered}, opts)
					if err != nil {
						continue
					}
					if !bytes.Equal(reviewClaimsJSON(t, got), want) {
						t.Errorf("byte %d (0x%02x to 0x%02x) changed the claims and the evidence still verified", pos, data[pos], altered[pos])
					}
					if extra := reviewNewPasses(got, claims); len(extra) > 0 {
						t.Errorf("byte %d (0x%02x to 0x%02x) made checks %v pass", pos, data[pos], altered[pos], extra)
					}
				}
			})
		}
	}
}
