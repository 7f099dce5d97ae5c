package nitro

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

func corpusOptions(t *testing.T, c corpus.Case) attest.Options {
	t.Helper()
	return attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
}

func evaluate(t *testing.T, c corpus.Case, vo attest.Options, ao appraise.Options) *appraise.Result {
	t.Helper()
	ev := attest.Evidence{Format: "nitro", Data: c.EvidenceBytes(t)}
	return appraise.Evaluate(context.Background(), ev, vo, ao)
}

func TestCorpusVerdicts(t *testing.T) {
	for _, c := range corpus.Cases(t, "nitro") {
		t.Run(c.Name, func(t *testing.T) {
			exp := c.Expect
			res := evaluate(t, c, corpusOptions(t, c), appraise.Options{})
			if string(res.Verdict) != exp.DefaultVerdict {
				t.Fatalf("verdict %s, expected %s (error: %v)", res.Verdict, exp.DefaultVerdict, res.Error)
			}
			if exp.DefaultVerdict == "reject" && !corpus.MatchesReason(errorText(res.Error), exp.RejectReason) {
				t.Errorf("error %q does not state the reason %q", res.Error, exp.RejectReason)
			}
			if exp.VerdictIfDebugAllowed != "" {
				res := evaluate(t, c, corpusOptions(t, c), appraise.Options{AllowDebug: true})
				if string(res.Verdict) != exp.VerdictIfDebugAllowed {
					t.Errorf("verdict with debug allowed %s, expected %s (error: %v)", res.Verdict, exp.VerdictIfDebugAllowed, res.Error)
				}
			}
		})
	}
}

func TestCorpusClaims(t *testing.T) {
	for _, c := range corpus.Cases(t, "nitro") {
		t.Run(c.Name, func(t *testing.T) {
			exp := c.Expect
			res := evaluate(t, c, corpusOptions(t, c), appraise.Options{AllowDebug: true})
			if exp.SignatureValid != nil && !*exp.SignatureValid || exp.ChainValid != nil && !*exp.ChainValid {
				if res.Claims != nil {
					t.Fatalf("claims returned for evidence whose signature or chain is invalid: %+v", res.Claims)
				}
				return
			}
			if res.Claims == nil {
				t.Fatalf("no claims: %v", res.Error)
			}
			cl := res.Claims
			if exp.Debug != nil && cl.Debug != *exp.Debug {
				t.Errorf("debug %v, expected %v", cl.Debug, *exp.Debug)
			}
			if exp.Nonce != nil && cl.Nonce.String() != *exp.Nonce {
				t.Errorf("nonce %s, expected %s", cl.Nonce, *exp.Nonce)
			}
			for name, want := range exp.Measurements {
				if got := cl.Measurements[name].String(); got != want {
					t.Errorf("measurement %s = %s, expected %s", name, got, want)
				}
			}
			if got, want := cl.Measurement.String(), exp.Measurements["pcr0"]; got != want {
				t.Errorf("measurement %s, expected PCR0 %s", got, want)
			}
			if cl.TrustAnchor.Kind != attest.AnchorVendorRoot {
				t.Errorf("trust anchor kind %s, expected %s", cl.TrustAnchor.Kind, attest.AnchorVendorRoot)
			}
			if cl.Emulated {
				t.Error("claims are marked emulated")
			}
		})
	}
}

func TestCorpusExpectedNonce(t *testing.T) {
	for _, c := range corpus.Cases(t, "nitro") {
		if c.Expect.DefaultVerdict != "accept" || c.Expect.Nonce == nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			nonce, err := hex.DecodeString(*c.Expect.Nonce)
			if err != nil {
				t.Fatal(err)
			}
			vo := corpusOptions(t, c)
			vo.Nonce = nonce
			if res := evaluate(t, c, vo, appraise.Options{}); res.Verdict != appraise.Accept {
				t.Errorf("rejected with the document's own nonce: %v", res.Error)
			}

			vo.Nonce = append([]byte{}, nonce...)
			vo.Nonce[0] ^= 1
			res := evaluate(t, c, vo, appraise.Options{})
			if res.Verdict != appraise.Reject {
				t.Fatal("accepted with a different expected nonce")
			}
			if !errors.Is(res.Error, attest.ErrBinding) {
				t.Errorf("error %v is not ErrBinding", res.Error)
			}
			if !corpus.MatchesReason(errorText(res.Error), "nonce") {
				t.Errorf("error %q does not name the nonce", res.Error)
			}
		})
	}
}

func TestCorpusAfterLeafExpiry(t *testing.T) {
	for _, c := range corpus.Cases(t, "nitro") {
		if c.Expect.DefaultVerdict != "accept" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			vo := corpusOptions(t, c)
			vo.At = vo.At.Add(24 * time.Hour)
			res := evaluate(t, c, vo, appraise.Options{})
			if res.Verdict != appraise.Reject {
				t.Fatal("accepted a day after the document certificate expired")
			}
			if !corpus.MatchesReason(errorText(res.Error), "expired") {
				t.Errorf("error %q does not say expired", res.Error)
			}
		})
	}
}

func TestCorpusUntagged(t *testing.T) {
	for _, c := range corpus.Cases(t, "nitro") {
		if c.Expect.DefaultVerdict != "accept" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			data := c.EvidenceBytes(t)
			if data[0] != 0xd2 {
				t.Skip("document is already untagged")
			}
			untagged := data[1:]
			v := &Verifier{}
			if !v.Detect(untagged) {
				t.Fatal("untagged document not detected")
			}
			claims, err := v.Verify(context.Background(), attest.Evidence{Data: untagged}, corpusOptions(t, c))
			if err != nil {
				t.Fatalf("untagged document rejected: %v", err)
			}
			if claims.Attributes["cose_tagged"] != false {
				t.Errorf("cose_tagged %v, expected false", claims.Attributes["cose_tagged"])
			}
		})
	}
}

func TestCorpusDetectAndInspect(t *testing.T) {
	for _, c := range corpus.Cases(t, "nitro") {
		t.Run(c.Name, func(t *testing.T) {
			data := c.EvidenceBytes(t)
			v, err := attest.Detect(data)
			if err != nil {
				t.Fatalf("detect: %v", err)
			}
			if v.Name() != "nitro" {
				t.Fatalf("detected as %s", v.Name())
			}
			fields, err := (&Verifier{}).Inspect(data)
			if err != nil {
				t.Fatalf("inspect: %v", err)
			}
			in := fields.(inspection)
			if got, want := in.PCRs["pcr0"].String(), c.Expect.Measurements["pcr0"]; got != want {
				t.Errorf("inspected pcr0 %s, expected %s", got, want)
			}
		})
	}
}

func TestCorpusPrefixesRejected(t *testing.T) {
	v := &Verifier{}
	for _, c := range corpus.Cases(t, "nitro") {
		t.Run(c.Name, func(t *testing.T) {
			data := c.EvidenceBytes(t)
			opts := corpusOptions(t, c)
			for n := 0; n < len(data); n++ {
				if _, err := v.Verify(context.Background(), attest.Evidence{Data: data[:n]}, opts); err == nil {
					t.Fatalf("prefix of %d bytes accepted", n)
				}
			}
		})
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDetectRejectsOtherFormats(t *testing.T) {
	v := &Verifier{}
	for _, tee := range []string{"nvidia-gpu", "snp", "tdx", "psa", "cca"} {
		if _, err := os.Stat(filepath.Join(corpus.Dir(t), tee)); err != nil {
			continue
		}
		for _, c := range corpus.Cases(t, tee) {
			if v.Detect(c.EvidenceBytes(t)) {
				t.Errorf("%s evidence detected as a Nitro document", c.Name)
			}
		}
	}
}

func TestCorpusConcurrentVerify(t *testing.T) {
	v := &Verifier{}
	for _, c := range corpus.Cases(t, "nitro") {
		if c.Expect.DefaultVerdict != "accept" {
			continue
		}
		data, opts := c.EvidenceBytes(t), corpusOptions(t, c)
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				_, err := v.Verify(context.Background(), attest.Evidence{Data: data}, opts)
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", c.Name, err)
			}
		}
	}
}
