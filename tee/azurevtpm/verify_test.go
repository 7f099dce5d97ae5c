package azurevtpm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
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
