package snp

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

func TestCorpus(t *testing.T) {
	for _, c := range corpus.Cases(t, "snp") {
		t.Run(c.Name, func(t *testing.T) {
			exp := c.Expect
			ev := attest.Evidence{Data: c.EvidenceBytes(t)}
			if v, err := attest.Detect(ev.Data); err != nil || v.Name() != "snp" {
				t.Fatalf("Detect = %v, %v; want the snp verifier", v, err)
			}
			res := corpus.CheckVerdicts(t, c, ev, c.Options(t))

			claims := res.Claims
			if claims == nil {
				if exp.DefaultVerdict == "accept" || (exp.SignatureValid != nil && *exp.SignatureValid && (exp.ChainValid == nil || *exp.ChainValid)) {
					t.Fatalf("no claims for a case whose signature and chain are valid: %v", res.Error)
				}
				checkUnverifiedFields(t, c, ev.Data)
				return
			}
			if claims.TrustAnchor.Kind != attest.AnchorVendorRoot {
				t.Errorf("trust anchor kind = %s, want vendor-root (the corpus roots are AMD's)", claims.TrustAnchor.Kind)
			}
			corpus.CheckClaims(t, c, claims)
		})
	}
}

// checkUnverifiedFields compares the fields of a report that did not verify
// with the expectations, through the parser alone.
func checkUnverifiedFields(t *testing.T, c corpus.Case, data []byte) {
	t.Helper()
	r, err := ParseReport(data)
	if err != nil {
		t.Fatalf("ParseReport: %v", err)
	}
	exp := c.Expect
	if exp.Debug != nil && r.Debug() != *exp.Debug {
		t.Errorf("debug bit = %v, want %v", r.Debug(), *exp.Debug)
	}
	if got := attest.Hex(r.Measurement[:]).String(); exp.Measurement != "" && got != exp.Measurement {
		t.Errorf("measurement = %s, want %s", got, exp.Measurement)
	}
	if got := attest.Hex(r.ReportData[:]).String(); exp.ReportData != "" && got != exp.ReportData {
		t.Errorf("report data = %s, want %s", got, exp.ReportData)
	}
	if exp.SigningKey != "" && r.SigningKeyName() != exp.SigningKey {
		t.Errorf("signing key = %s, want %s", r.SigningKeyName(), exp.SigningKey)
	}
	if r.HasCPUID && exp.Product != "" {
		if got := productFromCPUID(r.CPUIDFamily, r.CPUIDModel); got != exp.Product {
			t.Errorf("product from CPUID = %s, want %s", got, exp.Product)
		}
	}
}

func TestCorpusPrefixesRejected(t *testing.T) {
	v := &Verifier{}
	for _, c := range corpus.Cases(t, "snp") {
		data := c.EvidenceBytes(t)
		opts := attest.Options{At: c.Time(t), Collateral: c.Collateral(t)}
		for n := 0; n < len(data); n++ {
			prefix := data[:n]
			if v.Detect(prefix) {
				t.Errorf("%s: Detect accepts a %d-byte prefix", c.Name, n)
			}
			if _, err := ParseReport(prefix); err == nil {
				t.Fatalf("%s: ParseReport accepts a %d-byte prefix", c.Name, n)
			}
			if _, err := v.Verify(context.Background(), attest.Evidence{Data: prefix}, opts); !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("%s: Verify of a %d-byte prefix: %v, want a malformed error", c.Name, n, err)
			}
		}
	}
}

func TestCorpusInspect(t *testing.T) {
	for _, c := range corpus.Cases(t, "snp") {
		fields, err := (&Verifier{}).Inspect(c.EvidenceBytes(t))
		if err != nil {
			t.Errorf("%s: Inspect: %v", c.Name, err)
			continue
		}
		m := fields.(map[string]any)
		if got := m["measurement"]; c.Expect.Measurement != "" && got != c.Expect.Measurement {
			t.Errorf("%s: inspected measurement = %v, want %s", c.Name, got, c.Expect.Measurement)
		}
		if got, _ := m["reported_tcb"].(string); !strings.HasPrefix(got, "0x") {
			t.Errorf("%s: inspected reported_tcb = %q, want a hexadecimal TCB", c.Name, got)
		}
	}
}

// corpusCase returns the named case, skipping the test when it is absent.
func corpusCase(t *testing.T, name string) corpus.Case {
	t.Helper()
	for _, c := range corpus.Cases(t, "snp") {
		if c.Name == "snp/"+name {
			return c
		}
	}
	t.Skipf("corpus case snp/%s not found", name)
	return corpus.Case{}
}

// loadCaseFile loads one collateral file of a case.
func loadCaseFile(t *testing.T, c corpus.Case, name string) *collateral.Set {
	t.Helper()
	s, err := collateral.LoadPath(filepath.Join(c.Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRealChainsCrossed(t *testing.T) {
	vlekCase := corpusCase(t, "milan-vlek-v3-aws-trustee")
	vcekCase := corpusCase(t, "milan-vcek-v2-trustee")
	genoaCase := corpusCase(t, "genoa-vcek-v3-azure-trustee")
	at := vcekCase.Time(t)

	tests := []struct {
		name       string
		report     []byte
		collateral *collateral.Set
		kind       error
		contains   string
	}{
		{"VLEK report with a VCEK chain", vlekCase.EvidenceBytes(t), vcekCase.Collateral(t), attest.ErrCollateralMissing, "only a VCEK certificate"},
		{"VCEK report with a VLEK chain", vcekCase.EvidenceBytes(t), vlekCase.Collateral(t), attest.ErrCollateralMissing, "only a VLEK certificate"},
		{"Genoa report with a Milan chain", genoaCase.EvidenceBytes(t), vcekCase.Collateral(t), attest.ErrChain, "is a Genoa processor"},
		{"VCEK alone with embedded AMD roots", vcekCase.EvidenceBytes(t), loadCaseFile(t, vcekCase, "vcek.der"), nil, ""},
		{"VLEK alone with embedded AMD roots", vlekCase.EvidenceBytes(t), loadCaseFile(t, vlekCase, "vlek.der"), nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := verify(t, tc.report, attest.Options{At: at, Collateral: tc.collateral})
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims.TrustAnchor.Kind != attest.AnchorVendorRoot {
					t.Errorf("trust anchor kind = %s, want vendor-root", claims.TrustAnchor.Kind)
				}
				return
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Verify error = %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("Verify error = %q, want it to contain %q", err, tc.contains)
			}
		})
	}
}
