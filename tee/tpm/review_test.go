package tpm

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// reviewCheckResult returns the result of the named check, or "" when the
// claims do not record it.
func reviewCheckResult(c *attest.Claims, name string) attest.CheckResult {
	for _, ch := range c.Checks {
		if ch.Name == name {
			return ch.Result
		}
	}
	return ""
}

// TestReviewAKAttributesBound clears the restricted bit of the AK public
// area in evidence that verifies. The quote's qualifiedSigner covers the
// public area, so the altered area no longer belongs to the key that
// signed, and the verifier must not judge the key by its attributes.
func TestReviewAKAttributesBound(t *testing.T) {
	tested := 0
	for _, c := range corpus.Cases(t, "tpm") {
		if c.Negative() || c.Expect.DefaultVerdict != "accept" {
			continue
		}
		data, opts := c.EvidenceBytes(t), c.Options(t)
		ev, err := ParseEvidence(data)
		if err != nil || ev.AKPublic == nil {
			continue
		}
		claims, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, opts)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if got := reviewCheckResult(claims, CheckAKAttributes); got != attest.CheckPassed {
			t.Errorf("%s: unaltered evidence: check %s is %q, expected passed", c.Name, CheckAKAttributes, got)
		}

		// objectAttributes follows type and nameAlg in TPMT_PUBLIC, big
		// endian, so bit 16 (restricted) is in its second byte.
		off := bytes.Index(data, tpm2.Marshal(ev.AKPublic))
		if off < 0 {
			continue
		}
		tested++
		altered := bytes.Clone(data)
		altered[off+5] ^= 0x01
		claims, err = Verifier{}.Verify(context.Background(), attest.Evidence{Data: altered}, opts)
		if claims == nil {
			t.Fatalf("%s: altered AK public area: no claims (%v)", c.Name, err)
		}
		if got := reviewCheckResult(claims, CheckAKAttributes); got != attest.CheckNotChecked {
			t.Errorf("%s: altered AK public area: check %s is %q, expected not checked", c.Name, CheckAKAttributes, got)
		}
	}
	if tested == 0 {
		t.Skip("no TPM case carries a TPMT_PUBLIC AK public area")
	}
}
