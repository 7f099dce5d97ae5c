package nitro

import (
	"context"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

func evaluate(t *testing.T, c corpus.Case, vo attest.Options, ao appraise.Options) *appraise.Result {
	t.Helper()
	ev := attest.Evidence{Format: "nitro", Data: c.EvidenceBytes(t)}
	return appraise.Evaluate(context.Background(), ev, vo, ao)
}

func TestCorpusVerdicts(t *testing.T) {
	for _, c := range corpus.Cases(t, "nitro") {
		t.Run(c.Name, func(t *testing.T) {
			corpus.CheckVerdicts(t, c, attest.Evidence{Format: "nitro", Data: c.EvidenceBytes(t)}, c.Options(t))
		})
	}
}

func TestCorpusClaims(t *testing.T) {
	for _, c := range corpus.Cases(t, "nitro") {
		t.Run(c.Name, func(t *testing.T) {
			res := evaluate(t, c, c.Options(t), appraise.Options{AllowDebug: true})
			if corpus.CheckUnverified(t, c, res) {
				return
			}
			corpus.CheckClaims(t, c, res.Claims)
			cl := res.Claims
			if got, want := cl.Measurement.String(), c.Expect.Measurements["pcr0"]; got != want {
				t.Errorf("measurement %s, expected PCR0 %s", got, want)
			}
			if cl.TrustAnchor.Kind != attest.AnchorVendorRoot {
				t.Errorf("trust anchor kind %s, expected %s", cl.TrustAnchor.Kind, attest.AnchorVendorRoot)
			}
		})
	}
}

func TestCorpusExpectedNonce(t *testing.T) {
	corpus.CheckNonceBindings(t, "nitro")
}

func TestCorpusAfterLeafExpiry(t *testing.T) {
	for _, c := range corpus.AcceptedCases(t, "nitro") {
		t.Run(c.Name, func(t *testing.T) {
			vo := c.Options(t)
			vo.At = vo.At.Add(24 * time.Hour)
			res := evaluate(t, c, vo, appraise.Options{})
			if res.Verdict != appraise.Reject {
				t.Fatal("accepted a day after the document certificate expired")
			}
			if !corpus.MatchesReason(corpus.ErrorText(res.Error), "expired") {
				t.Errorf("error %q does not say expired", res.Error)
			}
		})
	}
}

func TestCorpusUntagged(t *testing.T) {
	for _, c := range corpus.AcceptedCases(t, "nitro") {
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
			claims, err := v.Verify(context.Background(), attest.Evidence{Data: untagged}, c.Options(t))
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
			opts := c.Options(t)
			for n := 0; n < len(data); n++ {
				if _, err := v.Verify(context.Background(), attest.Evidence{Data: data[:n]}, opts); err == nil {
					t.Fatalf("prefix of %d bytes accepted", n)
				}
			}
		})
	}
}

func TestDetectRejectsOtherFormats(t *testing.T) {
	v := &Verifier{}
	for _, c := range corpus.PresentCases(t, "nvidia-gpu", "snp", "tdx", "psa", "cca") {
		if v.Detect(c.EvidenceBytes(t)) {
			t.Errorf("%s evidence detected as a Nitro document", c.Name)
		}
	}
}

func TestCorpusConcurrentVerify(t *testing.T) {
	corpus.CheckConcurrentVerify(t, &Verifier{}, corpus.AcceptedCases(t, "nitro"))
}
