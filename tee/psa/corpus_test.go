package psa

import (
	"context"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// TestCorpusVerdicts verifies every PSA case of the evidence corpus under
// the default appraisal and compares verdict, reason and claims with the
// case's expect.json.
func TestCorpusVerdicts(t *testing.T) {
	corpus.CheckEachCase(t, "psa", "psa", checkClaims)
}

func checkClaims(t *testing.T, c corpus.Case, got *attest.Claims) {
	t.Helper()
	corpus.CheckClaims(t, c, got)
	if got.TrustAnchor.Kind != attest.AnchorCallerKey {
		t.Errorf("trust anchor kind %s, want %s", got.TrustAnchor.Kind, attest.AnchorCallerKey)
	}
	if !got.TrustAnchor.TestKey {
		t.Errorf("trust anchor %s not marked as a published test key", got.TrustAnchor.Name)
	}
}

// TestCorpusNonce passes each accepted case's nonce as the expected nonce,
// then changed ones, which must be binding errors.
func TestCorpusNonce(t *testing.T) {
	corpus.CheckNonceBindings(t, "psa")
}

// TestCorpusNoKey verifies each case without collateral: the missing IAK
// must be named.
func TestCorpusNoKey(t *testing.T) {
	for _, c := range corpus.Cases(t, "psa") {
		_, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, attest.Options{})
		if !errors.Is(err, attest.ErrCollateralMissing) {
			t.Errorf("%s: error %v, want collateral missing", c.Name, err)
		}
	}
}

// TestCorpusDecoding checks that detection assigns every case to the PSA
// verifier, that every case decodes without verification, and that every
// prefix and the case with a trailing byte are rejected without a panic.
func TestCorpusDecoding(t *testing.T) {
	corpus.CheckDecoding(t, "psa", Verifier{})
}
