package psa

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
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
			opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
			res := appraise.Evaluate(context.Background(), ev, opts, appraise.Options{})
			if string(res.Verdict) != c.Expect.DefaultVerdict {
				t.Fatalf("verdict %s (%v), want %s", res.Verdict, res.Error, c.Expect.DefaultVerdict)
			}
			if c.Expect.DefaultVerdict == "reject" && !corpus.MatchesReason(res.Error.Error(), c.Expect.RejectReason) {
				t.Errorf("reason %q does not state %q", res.Error, c.Expect.RejectReason)
			}
			if want := c.Expect.VerdictIfDebugAllowed; want != "" {
				res := appraise.Evaluate(context.Background(), ev, opts, appraise.Options{AllowDebug: true})
				if string(res.Verdict) != want {
					t.Errorf("verdict with debug allowed %s (%v), want %s", res.Verdict, res.Error, want)
				}
			}
			if c.Expect.SignatureValid != nil && !*c.Expect.SignatureValid {
				if res.Claims != nil {
					t.Errorf("claims reported for a token whose signature does not verify")
				}
				return
			}
			checkClaims(t, c, res.Claims)
		})
	}
}

func checkClaims(t *testing.T, c corpus.Case, got *attest.Claims) {
	t.Helper()
	if got == nil {
		t.Fatal("no claims for a verified token")
	}
	if c.Expect.Debug != nil && got.Debug != *c.Expect.Debug {
		t.Errorf("debug %v, want %v", got.Debug, *c.Expect.Debug)
	}
	if c.Expect.Nonce != nil && got.Nonce.String() != *c.Expect.Nonce {
		t.Errorf("nonce %s, want %s", got.Nonce, *c.Expect.Nonce)
	}
	for name, want := range c.Expect.Measurements {
		if got.Measurements[name].String() != want {
			t.Errorf("measurement %s = %s, want %s", name, got.Measurements[name], want)
		}
	}
	if got.TrustAnchor.Kind != attest.AnchorCallerKey {
		t.Errorf("trust anchor kind %s, want %s", got.TrustAnchor.Kind, attest.AnchorCallerKey)
	}
	if !got.TrustAnchor.TestKey {
		t.Errorf("trust anchor %s not marked as a published test key", got.TrustAnchor.Name)
	}
}

// TestCorpusNonce passes each accepted case's nonce as the expected nonce,
// then a changed one, which must be a binding error.
func TestCorpusNonce(t *testing.T) {
	for _, c := range corpus.Cases(t, "psa") {
		if c.Expect.DefaultVerdict != "accept" || c.Expect.Nonce == nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			nonce, _ := hex.DecodeString(*c.Expect.Nonce)
			opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t), Nonce: nonce}
			if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, opts); err != nil {
				t.Fatalf("expected nonce rejected: %v", err)
			}
			opts.Nonce = bytes.Clone(nonce)
			opts.Nonce[0] ^= 0xff
			claims, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, opts)
			if !errors.Is(err, attest.ErrBinding) {
				t.Fatalf("changed nonce: error %v, want a binding error", err)
			}
			if claims == nil {
				t.Error("no claims returned with the nonce error")
			}
		})
	}
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
		v, err := attest.Detect(c.EvidenceBytes(t))
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if v.Name() != "psa" {
			t.Errorf("%s: detected as %s", c.Name, v.Name())
		}
	}
}

// TestCorpusPrefixes verifies every prefix of each case and the case with
// a trailing byte: all must be rejected without a panic.
func TestCorpusPrefixes(t *testing.T) {
	for _, c := range corpus.Cases(t, "psa") {
		data := c.EvidenceBytes(t)
		opts := attest.Options{Collateral: c.Collateral(t)}
		for n := range len(data) {
			(Verifier{}).Detect(data[:n])
			if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data[:n]}, opts); err == nil {
				t.Fatalf("%s: prefix of %d bytes accepted", c.Name, n)
			}
		}
		trailing := append(bytes.Clone(data), 0x00)
		_, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: trailing}, opts)
		if !errors.Is(err, attest.ErrMalformed) {
			t.Errorf("%s: trailing byte: error %v, want malformed", c.Name, err)
		}
	}
}

// TestCorpusInspect decodes every case without verifying it, and every
// prefix without a panic.
func TestCorpusInspect(t *testing.T) {
	for _, c := range corpus.Cases(t, "psa") {
		data := c.EvidenceBytes(t)
		fields, err := (Verifier{}).Inspect(data)
		if err != nil || fields == nil {
			t.Errorf("%s: %v", c.Name, err)
		}
		for n := range len(data) {
			(Verifier{}).Inspect(data[:n])
		}
	}
}
