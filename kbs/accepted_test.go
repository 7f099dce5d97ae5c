package kbs

import (
	"slices"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ear"
)

// appraisal returns an appraisal with status and one reason per rule.
func appraisal(status ear.Status, rules ...string) *ear.Appraisal {
	a := &ear.Appraisal{Status: status, PolicyID: "default-test@sha256:00"}
	for _, rule := range rules {
		a.Reasons = append(a.Reasons, appraise.Reason{Rule: rule, Message: rule + " failed"})
	}
	return a
}

// A token passes only when every appraisal in it is affirming or warning.
func TestRequireAccepted(t *testing.T) {
	tests := []struct {
		name    string
		submods map[string]*ear.Appraisal
		wantErr string
	}{
		{"cpu affirming", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming)}, ""},
		{"cpu warning", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusWarning)}, ""},
		{"cpu and device affirming", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming), "gpu0": appraisal(ear.StatusAffirming)}, ""},
		{"no submodules", map[string]*ear.Appraisal{}, "the token has no cpu0 appraisal"},
		{"no cpu0", map[string]*ear.Appraisal{"gpu0": appraisal(ear.StatusAffirming)}, "the token has no cpu0 appraisal"},
		{"cpu contraindicated", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusContraindicated, "debug")},
			`appraisal cpu0 is "contraindicated", not affirming or warning, because the attestation policy default-test@sha256:00 rejected its evidence (debug: debug failed)`},
		{"cpu none", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusNone)}, `appraisal cpu0 is "none"`},
		{"cpu unknown status", map[string]*ear.Appraisal{"cpu0": appraisal("trusted")}, `appraisal cpu0 is "trusted"`},
		{"device contraindicated", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming), "gpu0": appraisal(ear.StatusContraindicated, "test-key")},
			`appraisal gpu0 is "contraindicated", not affirming or warning, because the attestation policy default-test@sha256:00 rejected its evidence (test-key: test-key failed)`},
		{"device without reasons", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming), "dcu0": appraisal(ear.StatusContraindicated)}, "(no reasons given)"},
		{"device empty", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming), "gpu0": nil}, "appraisal gpu0 is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := requireAccepted(&ear.Result{Submods: tt.submods})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("error = %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// rejectedAppraisal, called on its own, counts a missing or null appraisal
// as rejected and names its submodule instead of reading its status.
func TestRejectedAppraisalEmpty(t *testing.T) {
	tests := []struct {
		name    string
		submods map[string]*ear.Appraisal
		wantErr string
	}{
		{"cpu0 null", map[string]*ear.Appraisal{"cpu0": nil}, "appraisal cpu0 is empty"},
		{"cpu0 null beside a device", map[string]*ear.Appraisal{"cpu0": nil, "gpu0": appraisal(ear.StatusAffirming)}, "appraisal cpu0 is empty"},
		{"cpu0 missing", map[string]*ear.Appraisal{"gpu0": appraisal(ear.StatusAffirming)}, "appraisal cpu0 is empty"},
		{"no submodules", nil, "appraisal cpu0 is empty"},
		{"devices null", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming), "gpu1": nil, "gpu0": nil}, "appraisal gpu0 is empty"},
		{"rejected device before a null one", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming), "gpu0": nil, "gpu1": appraisal(ear.StatusContraindicated)},
			`appraisal gpu1 is "contraindicated"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rejectedAppraisal(&ear.Result{Submods: tt.submods})
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if err := rejectedAppraisal(&ear.Result{Submods: map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming)}}); err != nil {
		t.Errorf("accepted cpu0: error = %v, want none", err)
	}
}

// The attestation's status is its worst appraisal's, and its reasons name
// each device's rules with the device's submodule name.
func TestWorstStatusAndReasons(t *testing.T) {
	tests := []struct {
		name        string
		submods     map[string]*ear.Appraisal
		wantStatus  ear.Status
		wantReasons string
	}{
		{"cpu only", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming)}, ear.StatusAffirming, ""},
		{"cpu rejected", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusContraindicated, "debug")}, ear.StatusContraindicated, "debug: debug failed"},
		{"device warning", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming), "gpu0": appraisal(ear.StatusWarning)}, ear.StatusWarning, ""},
		{"device rejected", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming), "gpu0": appraisal(ear.StatusContraindicated, "test-key")},
			ear.StatusContraindicated, "gpu0: test-key: test-key failed"},
		{"both rejected", map[string]*ear.Appraisal{"gpu1": appraisal(ear.StatusContraindicated, "b"), "cpu0": appraisal(ear.StatusContraindicated, "a"), "gpu0": appraisal(ear.StatusNone, "c")},
			ear.StatusContraindicated, "a: a failed; gpu0: c: c failed; gpu1: b: b failed"},
		{"device none", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusWarning), "gpu0": appraisal(ear.StatusNone)}, ear.StatusNone, ""},
		{"device empty", map[string]*ear.Appraisal{"cpu0": appraisal(ear.StatusAffirming), "gpu0": nil}, ear.StatusContraindicated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result := &ear.Result{Submods: tt.submods}
			if got := worstStatus(result); got != tt.wantStatus {
				t.Errorf("worstStatus = %s, want %s", got, tt.wantStatus)
			}
			if got := resultReasons(result); got != tt.wantReasons {
				t.Errorf("resultReasons = %q, want %q", got, tt.wantReasons)
			}
		})
	}
}

// The attest log line lists the primary TEE's warnings as they are and
// each device's behind its TEE.
func TestVerifierWarnings(t *testing.T) {
	verdicts := []*Verdict{
		{Claims: &attest.Claims{TEE: attest.TEETDX, Warnings: []string{"skipped unusable collateral a.json: invalid"}}},
		nil,
		{Claims: &attest.Claims{TEE: "nvidia-gpu", Warnings: []string{"RIM b.xml matches no GPU"}}},
	}
	got := verifierWarnings(verdicts)
	want := []string{"skipped unusable collateral a.json: invalid", "nvidia-gpu: RIM b.xml matches no GPU"}
	if !slices.Equal(got, want) {
		t.Errorf("verifierWarnings = %q, want %q", got, want)
	}
	if got := verifierWarnings([]*Verdict{{Claims: &attest.Claims{TEE: attest.TEESNP}}}); got != nil {
		t.Errorf("no warnings: verifierWarnings = %q, want nil", got)
	}
}
