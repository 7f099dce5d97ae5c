package snp

import (
	"context"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/corpus"
)

func FuzzParseReport(f *testing.F) {
	for _, c := range corpus.Cases(f, "snp") {
		f.Add(c.EvidenceBytes(f))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		if got := r.marshal(); string(got) != string(data) {
			t.Errorf("marshal(ParseReport(data)) differs from data")
		}
		if _, err := (&Verifier{}).Inspect(data); err != nil {
			t.Errorf("Inspect fails on a report that parses: %v", err)
		}
	})
}

// FuzzVerify verifies mutated reports and certificate tables. Each corpus
// report is seeded alone and with a certificate table of its own VCEK or
// VLEK and ASK, so that mutations reach the chain checks. The seeds need no
// key generation, which is slow in a coverage-instrumented fuzz binary.
func FuzzVerify(f *testing.F) {
	cases := corpus.Cases(f, "snp")
	for _, c := range cases {
		report := c.EvidenceBytes(f)
		f.Add(report, []byte(nil))
		var entries []certTableEntry
		for _, cert := range c.Collateral(f).Certificates() {
			switch {
			case cert.Subject.CommonName == "SEV-VCEK":
				entries = append(entries, certTableEntry{GUID: guidVCEK, Data: cert.Raw})
			case cert.Subject.CommonName == "SEV-VLEK":
				entries = append(entries, certTableEntry{GUID: guidVLEK, Data: cert.Raw})
			case strings.HasPrefix(cert.Subject.CommonName, "SEV-"):
				entries = append(entries, certTableEntry{GUID: guidASK, Data: cert.Raw})
			}
		}
		f.Add(report, marshalCertTable(entries))
	}
	// The embedded AMD roots verify the chains of the certificate tables.
	opts := attest.Options{At: cases[0].Time(f)}
	v := &Verifier{}
	f.Fuzz(func(t *testing.T, data, aux []byte) {
		claims, err := v.Verify(context.Background(), attest.Evidence{Data: data, Aux: aux}, opts)
		if err == nil && claims == nil {
			t.Fatal("Verify returned neither claims nor an error")
		}
	})
}
