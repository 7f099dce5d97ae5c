package azurevtpm

import (
	"context"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// FuzzParseEvidence decodes arbitrary evidence JSON and HCL reports.
func FuzzParseEvidence(f *testing.F) {
	for _, c := range corpus.Cases(f, "azure-vtpm") {
		f.Add(c.EvidenceBytes(f))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEvidence(data)
		if err != nil {
			return
		}
		if hcl, err := ParseHCLReport(ev.HCLReport); err == nil {
			if rd, err := ParseRuntimeData(hcl.VariableData); err == nil {
				_, _ = rd.AK()
			}
		}
		_, _ = Verifier{}.Inspect(data)
	})
}

// FuzzParseHCLReport decodes arbitrary HCL reports, seeded from the
// corpus.
func FuzzParseHCLReport(f *testing.F) {
	for _, c := range corpus.Cases(f, "azure-vtpm") {
		if ev, err := ParseEvidence(c.EvidenceBytes(f)); err == nil {
			f.Add(ev.HCLReport)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseHCLReport(data)
		if err == nil && r.ReportType == ReportTypeTDX {
			_ = r.tdReportData()
		}
	})
}

// FuzzVerify runs the whole verifier, with the hardware verifiers
// registered by corpus_test.go, on arbitrary evidence.
func FuzzVerify(f *testing.F) {
	cases := corpus.Cases(f, "azure-vtpm")
	for _, c := range cases {
		f.Add(c.EvidenceBytes(f))
	}
	opts := attest.Options{At: cases[0].Time(f), Collateral: cases[0].Collateral(f)}
	f.Fuzz(func(t *testing.T, data []byte) {
		claims, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, opts)
		if err == nil && claims == nil {
			t.Fatal("Verify returned neither claims nor an error")
		}
	})
}
