package dcap

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// TestCorpus verifies every SGX and TDX case of the evidence corpus at its
// verification time and compares verdict, TCB status, advisories,
// measurements and the rejection reason with its expect.json.
func TestCorpus(t *testing.T) {
	v := NewVerifier()
	for _, tee := range []string{"sgx", "tdx"} {
		for _, c := range corpus.Cases(t, tee) {
			t.Run(c.Name, func(t *testing.T) {
				exp := c.Expect
				ev := attest.Evidence{Format: "dcap", Data: c.EvidenceBytes(t)}
				opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
				claims, verr := v.Verify(context.Background(), ev, opts)

				var msg string
				verdict := "accept"
				if verr != nil {
					verdict, msg = "reject", verr.Error()
				}
				if claims != nil {
					if d := appraise.Appraise(claims, appraise.Options{}); !d.Accepted {
						verdict = "reject"
						if err := d.Err(); err != nil {
							msg += "; " + err.Error()
						}
					}
				}
				if verdict != exp.DefaultVerdict {
					t.Fatalf("verdict %s, expected %s: %s", verdict, exp.DefaultVerdict, msg)
				}
				if exp.RejectReason != "" && !corpus.MatchesReason(msg, exp.RejectReason) {
					t.Errorf("rejection %q does not state %q", msg, exp.RejectReason)
				}
				signatureBroken := exp.SignatureValid != nil && !*exp.SignatureValid
				if signatureBroken {
					if claims != nil {
						t.Errorf("claims returned for evidence whose signature does not verify")
					}
					return
				}
				if claims == nil {
					t.Fatalf("no claims: %v", verr)
				}
				checkCorpusClaims(t, c, claims)
			})
		}
	}
}

func checkCorpusClaims(t *testing.T, c corpus.Case, claims *attest.Claims) {
	t.Helper()
	exp := c.Expect
	negative := c.Negative()
	if exp.TCBStatus != "" && !(negative && claims.TCB.Status == attest.TCBNotDetermined) {
		if claims.TCB.Status != exp.TCBStatus {
			t.Errorf("TCB status %s, expected %s", claims.TCB.Status, exp.TCBStatus)
		}
	}
	if exp.AdvisoryIDs != nil && claims.TCB.Status == exp.TCBStatus {
		got := claims.TCB.AdvisoryIDs
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(got, exp.AdvisoryIDs) {
			t.Errorf("advisories %v, expected %v", got, exp.AdvisoryIDs)
		}
	}

	if exp.Measurement != "" && claims.Measurement.String() != exp.Measurement {
		t.Errorf("measurement %s, expected %s", claims.Measurement, exp.Measurement)
	}
	if exp.MRSigner != "" && claims.Measurements["mrsigner"].String() != exp.MRSigner {
		t.Errorf("mrsigner %s, expected %s", claims.Measurements["mrsigner"], exp.MRSigner)
	}
	for i, want := range exp.RTMRs {
		name := "rtmr" + string(rune('0'+i))
		if got := claims.Measurements[name].String(); got != want {
			t.Errorf("%s %s, expected %s", name, got, want)
		}
	}

	if exp.ReportData != "" && claims.ReportData.String() != exp.ReportData {
		t.Errorf("report data %s, expected %s", claims.ReportData, exp.ReportData)
	}
	if exp.QuoteVersion != 0 && claims.Attributes["quote_version"] != exp.QuoteVersion {
		t.Errorf("quote version %v, expected %d", claims.Attributes["quote_version"], exp.QuoteVersion)
	}
	if exp.Debug != nil && claims.Debug != *exp.Debug {
		t.Errorf("debug %v, expected %v", claims.Debug, *exp.Debug)
	}
	if claims.TrustAnchor.Kind != attest.AnchorCallerRoot && claims.TrustAnchor.Kind != attest.AnchorVendorRoot {
		t.Errorf("trust anchor kind %s", claims.TrustAnchor.Kind)
	}
}

// TestCorpusTrustAnchors checks the root rule on a real quote: without a
// supplied root the embedded Intel SGX Root CA verifies it as the vendor
// root, and a caller's root replaces the embedded one.
func TestCorpusTrustAnchors(t *testing.T) {
	var c corpus.Case
	for _, x := range corpus.Cases(t, "tdx") {
		if x.Expect.DefaultVerdict == "accept" {
			c = x
			break
		}
	}
	if c.Name == "" {
		t.Skip("no accepted TDX case in the corpus")
	}
	ev := attest.Evidence{Data: c.EvidenceBytes(t)}

	withoutRoots := &collateral.Set{}
	for _, it := range c.Collateral(t).Items {
		if it.Kind != collateral.KindCertificate || !collateral.IsSelfSigned(it.Certificate) {
			withoutRoots.Add(it)
		}
	}
	claims, err := NewVerifier().Verify(context.Background(), ev, attest.Options{At: c.Time(t), Collateral: withoutRoots})
	if err != nil {
		t.Fatalf("with the embedded root: %v", err)
	}
	if claims.TrustAnchor.Kind != attest.AnchorVendorRoot || claims.TrustAnchor.SHA256.String() != IntelRootFingerprint {
		t.Errorf("trust anchor %+v, expected the Intel SGX Root CA as vendor root", claims.TrustAnchor)
	}

	e, err := NewEmulator(EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	_, err = NewVerifier().Verify(context.Background(), ev, attest.Options{At: c.Time(t), Collateral: withoutRoots, TrustAnchors: anchors})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("with another caller root: %v, expected a chain error", err)
	}
}
