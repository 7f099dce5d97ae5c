package psa

import (
	"bytes"
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
	for _, c := range corpus.Cases(t, "psa") {
		t.Run(c.Name, func(t *testing.T) {
			ev := attest.Evidence{Format: "psa", Data: c.EvidenceBytes(t)}
			res := corpus.CheckVerdicts(t, c, ev, c.Options(t))
			if corpus.CheckUnverified(t, c, res) {
				return
			}
			checkClaims(t, c, res.Claims)
		})
	}
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

// TestCorpusDetect checks that detection recognises every case.
func TestCorpusDetect(t *testing.T) {
	for _, c := range corpus.Cases(t, "psa") {
		corpus.CheckDetect(t, c, "psa")
	}
}

// TestCorpusPrefixes verifies every prefix of each case and the case with
// a trailing byte: all must be rejected without a panic.
func TestCorpusPrefixes(t *testing.T) {
	for _, c := range corpus.Cases(t, "psa") {
		data := c.EvidenceBytes(t)
		corpus.CheckPrefixesRejected(t, c, Verifier{}, data, len(data), 1)

		trailing := append(bytes.Clone(data), 0x00)
		_, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: trailing}, c.Options(t))
		if !errors.Is(err, attest.ErrMalformed) {
			t.Errorf("%s: trailing byte: error %v, want malformed", c.Name, err)
		}
	}
}

// TestCorpusInspect decodes every case without verifying it, and every
// prefix without a panic.
func TestCorpusInspect(t *testing.T) {
	for _, c := range corpus.Cases(t, "psa") {
		corpus.CheckInspect(t, c, Verifier{})
	}
}
