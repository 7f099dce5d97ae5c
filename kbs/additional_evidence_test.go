package kbs

import (
	"strings"
	"testing"
)

// The additional_evidence string must be a JSON object of device TEE name
// to evidence, with each name once. "null" names no devices but is not the
// empty string that means none, and a repeated name would drop the
// evidence of one device without a word.
func TestParseAdditionalEvidenceRejects(t *testing.T) {
	tests := []struct {
		name, text, wantErr string
	}{
		{"null", `null`, "not a JSON object"},
		{"string", `"sampledevice"`, "not a JSON object"},
		{"array", `[]`, "not a JSON object"},
		{"repeated device", `{"sampledevice":{"svn":"1"},"sampledevice":{"svn":"2"}}`, `device TEE "sampledevice" occurs more than once`},
		{"unknown device", `{"gpu":{}}`, `unknown device TEE "gpu"`},
		{"trailing data", `{} {}`, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devices, err := parseAdditionalEvidence(tt.text)
			if err == nil {
				t.Fatalf("accepted as %d devices", len(devices))
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseAdditionalEvidenceAccepts(t *testing.T) {
	devices, err := parseAdditionalEvidence(`{"sampledevice":{"svn":"2"},"nvidia":{"a":1}}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(devices) != 2 {
		t.Fatalf("%d devices, want 2", len(devices))
	}
	if devices[0].tee != "nvidia" || devices[1].tee != "sampledevice" {
		t.Errorf("devices = %s, %s; want nvidia, sampledevice", devices[0].tee, devices[1].tee)
	}
	if string(devices[1].evidence) != `{"svn":"2"}` {
		t.Errorf("sampledevice evidence = %s", devices[1].evidence)
	}

	none, err := parseAdditionalEvidence(`{}`)
	if err != nil || len(none) != 0 {
		t.Errorf("{} = %d devices, %v; want none", len(none), err)
	}
}

// An unknown device TEE name is cut in the error, which goes to the log
// line and the audit record.
func TestParseAdditionalEvidenceCutsUnknownName(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	_, err := parseAdditionalEvidence(`{"` + long + `":{}}`)
	if err == nil {
		t.Fatal("unknown device TEE accepted")
	}
	if !strings.Contains(err.Error(), `unknown device TEE "xxx`) {
		t.Errorf("error %.200q does not name the TEE", err)
	}
	if len(err.Error()) > 1024 {
		t.Errorf("error is %d bytes, want at most 1024", len(err.Error()))
	}
}
