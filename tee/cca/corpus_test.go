package cca

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

// TestCorpusVerdicts verifies every CCA case of the evidence corpus under
// the default appraisal and compares verdict, reason and claims with the
// case's expect.json.
func TestCorpusVerdicts(t *testing.T) {
	for _, c := range corpus.Cases(t, "cca") {
		t.Run(c.Name, func(t *testing.T) {
			ev := attest.Evidence{Format: "cca", Data: c.EvidenceBytes(t)}
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
// nonce, then a changed one, which must be a binding error.
func TestCorpusChallenge(t *testing.T) {
	for _, c := range corpus.Cases(t, "cca") {
		if c.Expect.DefaultVerdict != "accept" || c.Expect.Nonce == nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			nonce, _ := hex.DecodeString(*c.Expect.Nonce)
			opts := attest.Options{Collateral: c.Collateral(t), Nonce: nonce}
			if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, opts); err != nil {
				t.Fatalf("expected challenge rejected: %v", err)
			}
			opts.Nonce = bytes.Clone(nonce)
			opts.Nonce[63] ^= 0xff
			claims, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, opts)
			if !errors.Is(err, attest.ErrBinding) {
				t.Fatalf("changed challenge: error %v, want a binding error", err)
			}
			if claims == nil {
				t.Error("no claims returned with the challenge error")
			}
		})
	}
}

// TestCorpusNoKey verifies each case without collateral: the missing CPAK
// must be named.
func TestCorpusNoKey(t *testing.T) {
	for _, c := range corpus.Cases(t, "cca") {
		if c.Expect.SignatureValid != nil && !*c.Expect.SignatureValid && c.Name != "cca/negative-wrong-cpak" {
			continue // the realm signature fails before the CPAK is needed
		}
		_, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, attest.Options{})
		if !errors.Is(err, attest.ErrCollateralMissing) {
			t.Errorf("%s: error %v, want collateral missing", c.Name, err)
		}
	}
}

// TestCorpusDetect checks that detection recognises every case, and that
// the PSA verifier does not claim CCA tokens.
func TestCorpusDetect(t *testing.T) {
	for _, c := range corpus.Cases(t, "cca") {
		v, err := attest.Detect(c.EvidenceBytes(t))
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if v.Name() != "cca" {
			t.Errorf("%s: detected as %s", c.Name, v.Name())
		}
	}
}

// TestCorpusPrefixes verifies every prefix of each case and the case with
// a trailing byte: all must be rejected without a panic.
func TestCorpusPrefixes(t *testing.T) {
	for _, c := range corpus.Cases(t, "cca") {
		data := c.EvidenceBytes(t)
		opts := attest.Options{Collateral: c.Collateral(t)}
		for n := range len(data) {
			(Verifier{}).Detect(data[:n])
			if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data[:n]}, opts); err == nil {
				t.Fatalf("%s: prefix of %d bytes accepted", c.Name, n)
			}
		}
		trailing := append(bytes.Clone(data), 0x00)
		if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: trailing}, opts); !errors.Is(err, attest.ErrMalformed) {
			t.Errorf("%s: trailing byte: error %v, want malformed", c.Name, err)
		}
	}
}

// TestCorpusInspect decodes every case without verifying it, and every
// prefix without a panic.
func TestCorpusInspect(t *testing.T) {
	for _, c := range corpus.Cases(t, "cca") {
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
