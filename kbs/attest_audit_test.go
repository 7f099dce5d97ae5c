package kbs

import (
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/ear"
)

// deviceAppraisal returns an appraisal of tee evidence with digests made
// of digit.
func deviceAppraisal(tee string, status ear.Status, emulated bool, digit string) *ear.Appraisal {
	return &ear.Appraisal{Status: status, KeyClaims: &ear.KeyClaims{TEE: tee, Emulated: emulated},
		Digests: &ear.Digests{Evidence: "e" + digit, Collateral: "c" + digit, Policy: "p" + digit}}
}

func TestAuditDevices(t *testing.T) {
	cpu := deviceAppraisal("snp", ear.StatusAffirming, false, "0")
	tests := []struct {
		name    string
		submods map[string]*ear.Appraisal
		want    string
	}{
		{name: "cpu only", submods: map[string]*ear.Appraisal{"cpu0": cpu}, want: ""},
		{name: "one GPU", submods: map[string]*ear.Appraisal{"cpu0": cpu, "gpu0": deviceAppraisal("nvidia-gpu", ear.StatusAffirming, false, "1")},
			want: "gpu0 nvidia-gpu evidence=e1 policy=p1 status=affirming"},
		{name: "emulated GPU", submods: map[string]*ear.Appraisal{"cpu0": cpu, "gpu0": deviceAppraisal("nvidia-gpu", ear.StatusAffirming, true, "1")},
			want: "gpu0 nvidia-gpu evidence=e1 policy=p1 status=affirming emulated"},
		{name: "devices in name order", submods: map[string]*ear.Appraisal{
			"gpu1": deviceAppraisal("sampledevice", ear.StatusContraindicated, true, "3"),
			"cpu0": cpu,
			"dcu0": deviceAppraisal("hygondcu", ear.StatusWarning, false, "1"),
			"gpu0": deviceAppraisal("nvidia-gpu", ear.StatusAffirming, false, "2"),
		}, want: "dcu0 hygondcu evidence=e1 policy=p1 status=warning; " +
			"gpu0 nvidia-gpu evidence=e2 policy=p2 status=affirming; " +
			"gpu1 sampledevice evidence=e3 policy=p3 status=contraindicated emulated"},
		{name: "empty device left out", submods: map[string]*ear.Appraisal{"cpu0": cpu, "gpu0": nil,
			"gpu1": deviceAppraisal("nvidia-gpu", ear.StatusAffirming, false, "1")},
			want: "gpu1 nvidia-gpu evidence=e1 policy=p1 status=affirming"},
		{name: "device without key claims or digests", submods: map[string]*ear.Appraisal{"cpu0": cpu, "gpu0": {Status: ear.StatusNone}},
			want: "gpu0 status=none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auditDevices(&ear.Result{Submods: tt.submods}); got != tt.want {
				t.Errorf("auditDevices =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// An attestation without device evidence must not pay for the devices
// text.
func TestAuditDevicesCPUOnlyAllocates(t *testing.T) {
	result := &ear.Result{Submods: map[string]*ear.Appraisal{"cpu0": deviceAppraisal("snp", ear.StatusAffirming, false, "0")}}
	if n := testing.AllocsPerRun(100, func() { auditDevices(result) }); n != 0 {
		t.Errorf("auditDevices of a CPU-only result allocates %v times, want 0", n)
	}
}

// A rejected device follows the devices appraised before it, with the
// digest of its evidence when it decoded.
func TestNewDeviceError(t *testing.T) {
	cpu := deviceAppraisal("snp", ear.StatusAffirming, false, "0")
	cause := errors.New("binding mismatch")
	tests := []struct {
		name     string
		submods  map[string]*ear.Appraisal
		evidence []byte
		want     string
	}{
		{name: "first device", submods: map[string]*ear.Appraisal{"cpu0": cpu}, evidence: []byte("abc"),
			want: "gpu0 nvidia-gpu evidence=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad status=rejected"},
		{name: "not decoded", submods: map[string]*ear.Appraisal{"cpu0": cpu},
			want: "gpu0 nvidia-gpu status=rejected"},
		{name: "after an appraised device", submods: map[string]*ear.Appraisal{"cpu0": cpu,
			"dcu0": deviceAppraisal("hygondcu", ear.StatusAffirming, false, "1")},
			want: "dcu0 hygondcu evidence=e1 policy=p1 status=affirming; gpu0 nvidia-gpu status=rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newDeviceError(&ear.Result{Submods: tt.submods}, "gpu0", "nvidia", tt.evidence, cause)
			if err.devices != tt.want {
				t.Errorf("devices =\n%q\nwant\n%q", err.devices, tt.want)
			}
			if !errors.Is(err, cause) {
				t.Errorf("error %v does not wrap its cause", err)
			}
		})
	}
}
