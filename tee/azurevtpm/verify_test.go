package azurevtpm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// tdxCase returns the corpus case of a TDX VM.
func tdxCase(t *testing.T) corpus.Case {
	t.Helper()
	for _, c := range corpus.Cases(t, "azure-vtpm") {
		var keys map[string]json.RawMessage
		if json.Unmarshal(c.EvidenceBytes(t), &keys) == nil && keys["td_quote"] != nil {
			return c
		}
	}
	t.Skip("no TDX case in the corpus")
	return corpus.Case{}
}

func TestVerifyTDXWithoutTDQuote(t *testing.T) {
	c := tdxCase(t)
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(c.EvidenceBytes(t), &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "td_quote")
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{At: c.Time(t), Collateral: c.Collateral(t)})
	if !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "td_quote") {
		t.Fatalf("error = %v, want a malformed td_quote", err)
	}
}

func TestVerifyTDXChecks(t *testing.T) {
	c := tdxCase(t)
	claims, _ := Verifier{}.Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, attest.Options{At: c.Time(t), Collateral: c.Collateral(t)})
	if claims == nil {
		t.Fatal("no claims")
	}
	want := map[string]attest.CheckResult{
		CheckReportData:   attest.CheckPassed,
		CheckTDReport:     attest.CheckPassed,
		"quote-signature": attest.CheckPassed,
		"pcr-digest":      attest.CheckPassed,
		"nonce":           attest.CheckNotChecked,
	}
	got := map[string]attest.CheckResult{}
	requiredSkipped := false
	for _, ch := range claims.Checks {
		got[ch.Name] = ch.Result
		if strings.HasPrefix(ch.Name, "dcap/") && ch.Required && ch.Result == attest.CheckNotChecked {
			requiredSkipped = true
		}
	}
	for name, result := range want {
		if got[name] != result {
			t.Errorf("check %s = %q, want %q", name, got[name], result)
		}
	}
	if !requiredSkipped {
		t.Error("no required DCAP check is recorded as not checked, although no Intel collateral was supplied")
	}
	if claims.TCB.Status != attest.TCBNotDetermined {
		t.Errorf("TCB status = %q, want %q", claims.TCB.Status, attest.TCBNotDetermined)
	}
}

// An SGX quote passes the dcap verifier, and an enclave sets its report
// data freely, so it must not stand in for the TD quote of a TDX VM.
func TestVerifyTDXRejectsSGXQuote(t *testing.T) {
	c := tdxCase(t)
	ev, err := ParseEvidence(c.EvidenceBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	hcl, err := ParseHCLReport(ev.HCLReport)
	if err != nil {
		t.Fatal(err)
	}
	e, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "sgx"})
	if err != nil {
		t.Fatal(err)
	}
	sgx, err := e.Attest(context.Background(), hcl.tdReportData())
	if err != nil {
		t.Fatal(err)
	}

	var doc map[string]json.RawMessage
	if err := json.Unmarshal(c.EvidenceBytes(t), &doc); err != nil {
		t.Fatal(err)
	}
	doc["td_quote"], _ = json.Marshal(base64.RawURLEncoding.EncodeToString(sgx.Data))
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulator", Raw: e.Root().Raw, Certificate: e.Root()})
	opts := attest.Options{At: time.Now(), Collateral: e.Collateral(), TrustAnchors: anchors}

	_, err = Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, opts)
	if !errors.Is(err, attest.ErrBinding) || !strings.Contains(err.Error(), "td_quote") || !strings.Contains(err.Error(), "from a sgx TEE") {
		t.Fatalf("error = %v, want a binding error naming td_quote and the SGX quote", err)
	}
}
