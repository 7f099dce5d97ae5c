package tpm

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
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

// TestReviewSecureBootErrorRecorded alters the data of a Secure Boot
// variable event, which the PCR replay does not cover but whose digest
// the Secure Boot reader compares. The claims must record that the state
// was not read, instead of leaving it out without a word.
func TestReviewSecureBootErrorRecorded(t *testing.T) {
	tested := 0
	for _, c := range corpus.Cases(t, "tpm") {
		if c.Negative() || c.Expect.DefaultVerdict != "accept" {
			continue
		}
		data, opts := c.EvidenceBytes(t), c.Options(t)
		ev, err := ParseEvidence(data)
		if err != nil || len(ev.EventLog) == 0 {
			continue
		}
		parsed, err := tcg.ParseEventLog(ev.EventLog, tcg.ParseOpts{AllowPadding: true})
		if err != nil {
			continue
		}
		off := -1
		for _, e := range parsed.Events(register.HashSHA256) {
			if e.MRIndex() == 7 && e.UntrustedType() == tcg.EFIVariableDriverConfig && len(e.RawData()) > 64 {
				off = bytes.Index(data, e.RawData())
				break
			}
		}
		if off < 0 {
			continue
		}
		tested++
		altered := bytes.Clone(data)
		altered[off+40] ^= 0x01
		claims, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: altered}, opts)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if got := reviewCheckResult(claims, CheckSecureBoot); got != attest.CheckNotChecked {
			t.Errorf("%s: altered Secure Boot event: check %s is %q, expected not checked", c.Name, CheckSecureBoot, got)
		}
	}
	if tested == 0 {
		t.Skip("no TPM case carries a Secure Boot variable event")
	}
}
