package cca

import (
	"context"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// TestCorpusVerdicts verifies every CCA case of the evidence corpus under
// the default appraisal and compares verdict, reason and claims with the
// case's expect.json.
func TestCorpusVerdicts(t *testing.T) {
	corpus.CheckEachCase(t, "cca", "cca", checkClaims)
}

func checkClaims(t *testing.T, c corpus.Case, got *attest.Claims) {
	t.Helper()
	corpus.CheckClaims(t, c, got)
	if got.Measurement.String() != got.Measurements["rim"].String() {
		t.Errorf("measurement %s is not the RIM %s", got.Measurement, got.Measurements["rim"])
	}
	for _, name := range []string{"rem0", "rem1", "rem2", "rem3", "rpv", "implementation_id"} {
		if _, ok := got.Measurements[name]; !ok {
			t.Errorf("measurement %s missing", name)
		}
	}
	if got.TrustAnchor.Kind != attest.AnchorCallerKey || !got.TrustAnchor.TestKey {
		t.Errorf("trust anchor %+v, want the published test CPAK as a caller key", got.TrustAnchor)
	}
}

// TestCorpusChallenge passes each accepted case's challenge as the expected
// nonce, then changed ones, which must be binding errors.
func TestCorpusChallenge(t *testing.T) {
	corpus.CheckNonceBindings(t, "cca")
}

// TestCorpusNoKey verifies each case without collateral: the missing CPAK
// must be named.
func TestCorpusNoKey(t *testing.T) {
	for _, c := range corpus.Cases(t, "cca") {
		if c.SignatureInvalid() && c.Name != "cca/negative-wrong-cpak" {
			continue // the realm signature fails before the CPAK is needed
		}
		_, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, attest.Options{})
		if !errors.Is(err, attest.ErrCollateralMissing) {
			t.Errorf("%s: error %v, want collateral missing", c.Name, err)
		}
	}
}

// TestCorpusDecoding checks that detection assigns every case to the CCA
// verifier, so the PSA verifier does not claim CCA tokens. Every case must
// decode without verification, and every prefix and the case with a
// trailing byte must be rejected without a panic.
func TestCorpusDecoding(t *testing.T) {
	corpus.CheckDecoding(t, "cca", Verifier{})
}
