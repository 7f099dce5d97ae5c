package kbs

import (
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// The fix of a binding error names the runtime data that the evidence
// binds: with additional-evidence for the primary evidence, without it
// for a device, and in the SPDM nonce for NVIDIA GPUs.
func TestBindingErrorNamesRuntimeData(t *testing.T) {
	tests := []struct {
		name    string
		tee     string
		kind    runtimeDataKind
		want    []string
		notWant []string
	}{
		{"primary snp", "snp", primaryRuntimeData,
			[]string{"report data", "{additional-evidence, nonce, tee-pubkey}", "exact additional_evidence string"},
			[]string{"SPDM"}},
		{"sample device", "sampledevice", deviceRuntimeData,
			[]string{"report data", "device runtime data {nonce, tee-pubkey}, without additional-evidence"},
			[]string{"{additional-evidence", "SPDM"}},
		{"nvidia device", "nvidia", deviceRuntimeData,
			[]string{"GET_MEASUREMENTS nonce", "first 32 bytes of the SHA384", "device runtime data {nonce, tee-pubkey}", "as the SPDM nonce"},
			[]string{"{additional-evidence", "into the report data"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := bindingError(tc.tee, tc.kind, []byte{1}, []byte{2})
			if !errors.Is(err, attest.ErrBinding) {
				t.Errorf("error %v is not a binding error", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			for _, notWant := range tc.notWant {
				if strings.Contains(err.Error(), notWant) {
					t.Errorf("error %q contains %q", err, notWant)
				}
			}
		})
	}
}
