package azurevtpm

import (
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
	corpus.AddSeeds(f, cases)
	corpus.FuzzVerifier(f, Verifier{}, cases[0].Options(f))
}

// FuzzCheckRuntimeDigest checks arbitrary evidence against the digest of
// the KBS vector, seeded from the corpus and, when present, the vector.
func FuzzCheckRuntimeDigest(f *testing.F) {
	for _, c := range corpus.Cases(f, "azure-vtpm") {
		f.Add(c.EvidenceBytes(f))
	}
	digest := make([]byte, 48)
	if dir, ok := kbsVectorDirIfPresent(); ok {
		v, err := readTrusteeVector(dir)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v.evidence)
		digest = v.digest
	}
	claims := &attest.Claims{ReportData: make(attest.Hex, 64)}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = CheckRuntimeDigest(claims, data, ReportTypeSNP, digest)
		_ = CheckRuntimeDigest(claims, data, ReportTypeTDX, digest)
	})
}
