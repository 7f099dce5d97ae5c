package azurevtpm

import (
	"math/rand/v2"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
	_ "github.com/cloister-dev/cloister/tee/dcap"
	_ "github.com/cloister-dev/cloister/tee/snp"
)

// TestCorpus verifies every Azure case of the evidence corpus under the
// default appraisal and compares verdict, reason, nonce, measurements,
// debug and TCB status with the case's expect.json.
func TestCorpus(t *testing.T) {
	for _, c := range corpus.Cases(t, "azure-vtpm") {
		t.Run(c.Name, func(t *testing.T) {
			res := corpus.CheckVerdicts(t, c, attest.Evidence{Data: c.EvidenceBytes(t)}, c.Options(t))
			if res.Format != "azure-vtpm" {
				t.Fatalf("format = %q, want azure-vtpm", res.Format)
			}
			if res.Error != nil {
				t.Logf("rejected: %v", res.Error)
			}
			if res.Claims == nil {
				if !c.SignatureInvalid() {
					t.Fatalf("no claims although the signatures are valid: %v", res.Error)
				}
				return
			}
			corpus.CheckTCB(t, c, res.Claims)
			if res.Verdict == appraise.Reject && c.Negative() {
				// A negative case changes the evidence, so only the platform
				// claims still match the expectations.
				corpus.CheckDebug(t, c, res.Claims)
				return
			}
			corpus.CheckClaims(t, c, res.Claims)
		})
	}
}

// TestCorpusNonce checks the vTPM nonce of each accepted case as the
// expected nonce and rejects another one.
func TestCorpusNonce(t *testing.T) {
	corpus.CheckNonceBindings(t, "azure-vtpm")
}

// TestCorpusPrefixes checks that every proper prefix of each case's
// evidence is rejected without a panic.
func TestCorpusPrefixes(t *testing.T) {
	corpus.CheckJSONPrefixes(t, "azure-vtpm", Verifier{}, func(size int) int { return 1 + size/4000 })
}

// TestRandomInputs checks that random bytes are rejected and that random
// byte changes to real evidence never panic the verifier.
func TestRandomInputs(t *testing.T) {
	corpus.CheckRandomInputs(t, Verifier{}, corpus.Cases(t, "azure-vtpm"), rand.New(rand.NewPCG(3, 4)), 200)
}
