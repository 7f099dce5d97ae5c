package kbs

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/snp"
)

// The Trustee guest's SEV-SNP JSON is rebuilt into the binary report byte
// for byte: the report parses, carries the expected report data, and its
// signature verifies under the VCEK of the certificate chain and AMD's
// embedded roots.
func TestSNPGuestJSONVector(t *testing.T) {
	var expect struct {
		Expected struct {
			ReportData string `json:"report_data_hex"`
		} `json:"expected"`
	}
	loadVector(t, "trustee_snp-evidence-guest-json.expect.json", &expect)
	raw, err := os.ReadFile(filepath.Join(vectorDir(t), "trustee_snp-evidence-guest-json.json"))
	if err != nil {
		t.Fatal(err)
	}

	ev, err := DecodeEvidence("snp", json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	r, err := snp.ParseReport(ev.Data)
	if err != nil {
		t.Fatalf("rebuilt report does not parse: %v", err)
	}
	if got := hex.EncodeToString(r.ReportData[:]); got != expect.Expected.ReportData {
		t.Errorf("report data = %s, want %s", got, expect.Expected.ReportData)
	}
	if len(ev.Aux) == 0 {
		t.Fatal("no certificate table from cert_chain")
	}

	claims, err := attest.Verify(context.Background(), ev, attest.Options{})
	if err != nil {
		t.Fatalf("rebuilt report does not verify: %v", err)
	}
	var signed bool
	for _, c := range claims.Checks {
		if c.Name == "signature" {
			signed = c.Result == attest.CheckPassed
		}
	}
	if !signed {
		t.Errorf("signature check did not pass: %+v", claims.Checks)
	}
	if claims.TrustAnchor.Kind != attest.AnchorVendorRoot {
		t.Errorf("trust anchor = %+v, want an embedded AMD root", claims.TrustAnchor)
	}
}

func TestSNPGuestJSONRejectsBadFields(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(vectorDir(t), "trustee_snp-evidence-guest-json.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	json.Unmarshal(raw, &doc)
	cases := map[string]func(r map[string]any){
		"short report_data": func(r map[string]any) { r["report_data"] = []int{1, 2} },
		"byte out of range": func(r map[string]any) { r["measurement"] = append(make([]any, 47), 300) },
		"not an array":      func(r map[string]any) { r["chip_id"] = "abc" },
	}
	for name, modify := range cases {
		var d map[string]map[string]any
		json.Unmarshal(raw, &d)
		modify(d["attestation_report"])
		body, _ := json.Marshal(d)
		if _, err := DecodeEvidence("snp", body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
