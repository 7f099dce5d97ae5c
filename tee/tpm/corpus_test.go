package tpm

import (
	"bytes"
	"context"
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
			opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
			ev := attest.Evidence{Data: c.EvidenceBytes(t)}
			res := appraise.Evaluate(context.Background(), ev, opts, appraise.Options{})

			if res.Format != "tpm" {
				t.Fatalf("format = %q, want tpm", res.Format)
			}
			if string(res.Verdict) != c.Expect.DefaultVerdict {
				t.Fatalf("verdict = %s, want %s (error: %v)", res.Verdict, c.Expect.DefaultVerdict, res.Error)
			}
			if res.Verdict == appraise.Reject {
				if !corpus.MatchesReason(res.Error.Error(), c.Expect.RejectReason) {
					t.Errorf("error %q does not state the reason %q", res.Error, c.Expect.RejectReason)
				}
				return
			}
			if c.Expect.Nonce != nil && res.Claims.Nonce.String() != *c.Expect.Nonce {
				t.Errorf("nonce = %s, want %s", res.Claims.Nonce, *c.Expect.Nonce)
			}
			for name, want := range c.Expect.Measurements {
				if got := res.Claims.Measurements[name].String(); got != want {
					t.Errorf("measurement %s = %s, want %s", name, got, want)
				}
			}
			if res.Claims.Debug {
				t.Error("debug = true; a TPM has no debug mode")
			}
		})
	}
}

// TestCorpusNonce checks that an accepted case passes with its own nonce
// as the expected one and is rejected with another.
func TestCorpusNonce(t *testing.T) {
	for _, c := range corpus.Cases(t, "tpm") {
		if c.Expect.DefaultVerdict != "accept" || c.Expect.Nonce == nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			nonce, err := attest.ParseHex(*c.Expect.Nonce)
			if err != nil {
				t.Fatal(err)
			}
			ev := attest.Evidence{Data: c.EvidenceBytes(t)}
			opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t), Nonce: nonce}
			if res := appraise.Evaluate(context.Background(), ev, opts, appraise.Options{}); res.Verdict != appraise.Accept {
				t.Fatalf("with the expected nonce: verdict %s: %v", res.Verdict, res.Error)
			}

			opts.Nonce = append([]byte{}, nonce...)
			opts.Nonce[len(opts.Nonce)-1] ^= 1
			res := appraise.Evaluate(context.Background(), ev, opts, appraise.Options{})
			if res.Verdict != appraise.Reject {
				t.Fatal("with another nonce: accepted")
			}
			if !corpus.MatchesReason(res.Error.Error(), "nonce") {
				t.Errorf("error %q does not name the nonce", res.Error)
			}
		})
	}
}

// TestCorpusPrefixes checks that every proper prefix of each case's
// evidence is rejected without a panic.
func TestCorpusPrefixes(t *testing.T) {
	for _, c := range corpus.Cases(t, "tpm") {
		t.Run(c.Name, func(t *testing.T) {
			data := c.EvidenceBytes(t)
			opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
			step := 1
			if len(data) > 4096 {
				// The event log makes up most of a large attestation, and every
				// 7th prefix there still cuts each structure many times.
				step = 7
			}
			// A prefix that only drops trailing white space is the same
			// JSON document.
			end := len(bytes.TrimRight(data, " \t\r\n"))
			for n := 0; n < end; n += step {
				if claims, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data[:n]}, opts); err == nil {
					t.Fatalf("prefix of %d bytes verified: %+v", n, claims)
				}
			}
		})
	}
}

// TestRandomInputs checks that random bytes are rejected and that random
// byte changes to real evidence never panic the verifier.
func TestRandomInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		data := make([]byte, r.IntN(4096))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{}); err == nil {
			t.Fatalf("random input %d of %d bytes verified", i, len(data))
		}
	}
	for _, c := range corpus.Cases(t, "tpm") {
		orig := c.EvidenceBytes(t)
		opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
		for i := 0; i < 300; i++ {
			data := append([]byte{}, orig...)
			for k := 0; k < 1+r.IntN(8); k++ {
				data[r.IntN(len(data))] = byte(r.Uint32())
			}
			_, _ = (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, opts)
			_, _ = (Verifier{}).Inspect(data)
		}
	}
}
