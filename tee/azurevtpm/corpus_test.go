package azurevtpm

import (
	"bytes"
	"context"
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
			opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
			ev := attest.Evidence{Data: c.EvidenceBytes(t)}
			res := appraise.Evaluate(context.Background(), ev, opts, appraise.Options{})

			if res.Format != "azure-vtpm" {
				t.Fatalf("format = %q, want azure-vtpm", res.Format)
			}
			if string(res.Verdict) != c.Expect.DefaultVerdict {
				t.Fatalf("verdict = %s, want %s (error: %v)", res.Verdict, c.Expect.DefaultVerdict, res.Error)
			}
			if res.Error != nil {
				t.Logf("rejected: %v", res.Error)
			}
			if res.Verdict == appraise.Reject && !corpus.MatchesReason(res.Error.Error(), c.Expect.RejectReason) {
				t.Errorf("error %q does not state the reason %q", res.Error, c.Expect.RejectReason)
			}
			if res.Claims == nil {
				if c.Expect.SignatureValid == nil || *c.Expect.SignatureValid {
					t.Fatalf("no claims although the signatures are valid: %v", res.Error)
				}
				return
			}
			if c.Expect.Debug != nil && res.Claims.Debug != *c.Expect.Debug {
				t.Errorf("debug = %t, want %t", res.Claims.Debug, *c.Expect.Debug)
			}
			if c.Expect.TCBStatus != "" && res.Claims.TCB.Status != c.Expect.TCBStatus {
				t.Errorf("TCB status = %q, want %q", res.Claims.TCB.Status, c.Expect.TCBStatus)
			}
			if res.Verdict == appraise.Reject && c.Negative() {
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
		})
	}
}

// TestCorpusNonce checks the vTPM nonce of each accepted case as the
// expected nonce and rejects another one.
func TestCorpusNonce(t *testing.T) {
	for _, c := range corpus.Cases(t, "azure-vtpm") {
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
			opts.Nonce = []byte("another nonce")
			res := appraise.Evaluate(context.Background(), ev, opts, appraise.Options{})
			if res.Verdict != appraise.Reject || !corpus.MatchesReason(res.Error.Error(), "nonce") {
				t.Fatalf("with another nonce: verdict %s, error %v", res.Verdict, res.Error)
			}
		})
	}
}

// TestCorpusPrefixes checks that every proper prefix of each case's
// evidence is rejected without a panic.
func TestCorpusPrefixes(t *testing.T) {
	for _, c := range corpus.Cases(t, "azure-vtpm") {
		t.Run(c.Name, func(t *testing.T) {
			data := c.EvidenceBytes(t)
			opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
			end := len(bytes.TrimRight(data, " \t\r\n"))
			step := 1 + len(data)/4000
			for n := 0; n < end; n += step {
				if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data[:n]}, opts); err == nil {
					t.Fatalf("prefix of %d bytes verified", n)
				}
			}
		})
	}
}

// TestRandomInputs checks that random bytes are rejected and that random
// byte changes to real evidence never panic the verifier.
func TestRandomInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		data := make([]byte, r.IntN(4096))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		if _, err := (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{}); err == nil {
			t.Fatalf("random input %d of %d bytes verified", i, len(data))
		}
	}
	for _, c := range corpus.Cases(t, "azure-vtpm") {
		orig := c.EvidenceBytes(t)
		opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
		for i := 0; i < 200; i++ {
			data := append([]byte{}, orig...)
			for k := 0; k < 1+r.IntN(8); k++ {
				data[r.IntN(len(data))] = byte(r.Uint32())
			}
			_, _ = (Verifier{}).Verify(context.Background(), attest.Evidence{Data: data}, opts)
			_, _ = (Verifier{}).Inspect(data)
		}
	}
}
