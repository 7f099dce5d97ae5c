package kbs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/azurevtpm"
	_ "github.com/cloister-dev/cloister/tee/snp"
)

// azureVectorAppraiser verifies Azure vTPM evidence at a fixed time inside
// the validity of the vector's VCEK (2025-01-28 to 2032-01-28) and accepts
// every verified result, so that only the binding decides.
type azureVectorAppraiser struct{}

func (azureVectorAppraiser) Appraise(ctx context.Context, tee string, ev attest.Evidence) (*Verdict, error) {
	opts := attest.Options{At: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	c, err := azurevtpm.Verifier{}.Verify(ctx, ev, opts)
	if err != nil {
		return nil, err
	}
	return &Verdict{Claims: c, Decision: &appraise.Decision{Accepted: true}}, nil
}

// loadAzureVector returns the primary evidence of a Trustee guest on an
// SEV-SNP Azure VM and the runtime-data digest it binds.
func loadAzureVector(t *testing.T) (json.RawMessage, []byte) {
	t.Helper()
	evidence, err := os.ReadFile(filepath.Join(vectorDir(t), "trustee_az-snp-vtpm-evidence-v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expect struct {
		ReportData string `json:"expected_report_data_hex"`
	}
	loadVector(t, "trustee_az-snp-vtpm-evidence-v2.expect.json", &expect)
	return evidence, mustHex(t, expect.ReportData)
}

func TestDecodeEvidenceAzureGuestJSON(t *testing.T) {
	raw, _ := loadAzureVector(t)
	for _, tee := range []string{"az-snp-vtpm", "az-tdx-vtpm"} {
		ev, err := DecodeEvidence(tee, raw)
		if err != nil {
			t.Fatalf("%s: %v", tee, err)
		}
		if ev.Format != string(attest.TEEAzureVTPM) {
			t.Errorf("%s: format = %q, want %q", tee, ev.Format, attest.TEEAzureVTPM)
		}
		if string(ev.Data) != string(raw) {
			t.Errorf("%s: the evidence data is not the guest's JSON", tee)
		}
	}
}

func TestAppraiseBoundAzureVector(t *testing.T) {
	raw, digest := loadAzureVector(t)
	ev, err := DecodeEvidence("az-snp-vtpm", raw)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Appraiser: azureVectorAppraiser{}}

	if _, err := s.appraiseBound(context.Background(), "az-snp-vtpm", ev, digest, primaryRuntimeData); err != nil {
		t.Fatalf("the vector's own digest is rejected: %v", err)
	}

	otherDigest := append([]byte(nil), digest...)
	otherDigest[len(otherDigest)-1] ^= 1
	tests := []struct {
		name      string
		tee       string
		digest    []byte
		wantField string
	}{
		{"other digest", "az-snp-vtpm", otherDigest, "extraData"},
		{"digest zero-padded", "az-snp-vtpm", ReportDataFor("snp", digest), "extraData"},
		{"tdx session", "az-tdx-vtpm", digest, "report_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.appraiseBound(context.Background(), tc.tee, ev, tc.digest, primaryRuntimeData)
			if !errors.Is(err, attest.ErrBinding) {
				t.Fatalf("error = %v, want a binding error", err)
			}
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("error = %v, want it to name %s", err, tc.wantField)
			}
		})
	}
}
