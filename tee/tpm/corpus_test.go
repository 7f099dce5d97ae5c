package tpm

import (
	"math/rand/v2"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// TestCorpus verifies every TPM case of the evidence corpus under the
// default appraisal and compares verdict, reason, nonce and measurements
// with the case's expect.json.
func TestCorpus(t *testing.T) {
	for _, c := range corpus.Cases(t, "tpm") {
		t.Run(c.Name, func(t *testing.T) {
			res := corpus.CheckVerdicts(t, c, attest.Evidence{Data: c.EvidenceBytes(t)}, c.Options(t))
			if res.Format != "tpm" {
				t.Fatalf("format = %q, want tpm", res.Format)
			}
			if res.Verdict == appraise.Reject {
				return
			}
			corpus.CheckClaims(t, c, res.Claims)
			if res.Claims.Debug {
				t.Error("debug = true; a TPM has no debug mode")
			}
		})
	}
}

// TestCorpusNonce checks that an accepted case passes with its own nonce
// as the expected one and is rejected with another.
func TestCorpusNonce(t *testing.T) {
	corpus.CheckNonceBindings(t, "tpm")
}

// TestCorpusPrefixes checks that every proper prefix of each case's
// evidence is rejected without a panic.
func TestCorpusPrefixes(t *testing.T) {
	corpus.CheckJSONPrefixes(t, "tpm", Verifier{}, func(size int) int {
		if size > 4096 {
			// The event log makes up most of a large attestation, and every
			// 7th prefix there still cuts each structure many times.
			return 7
		}
		return 1
	})
}

// TestRandomInputs checks that random bytes are rejected and that random
// byte changes to real evidence never panic the verifier.
func TestRandomInputs(t *testing.T) {
	corpus.CheckRandomInputs(t, Verifier{}, corpus.Cases(t, "tpm"), rand.New(rand.NewPCG(1, 2)), 300)
}
