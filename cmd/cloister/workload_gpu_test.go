package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkWorkloadFlagErrors runs each case's workload command, with DIR in its
// flags replaced by a temporary directory and a manifest that does not exist,
// and checks the usage error that it returns.
func checkWorkloadFlagErrors(t *testing.T, tests []flagErrorCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The manifest does not exist: the flags are checked first.
			dir := t.TempDir()
			var args []string
			for _, arg := range tc.args {
				args = append(args, strings.Replace(arg, "DIR", dir, 1))
			}
			_, err := runCloister(t, append(args, "--manifest", filepath.Join(dir, "manifest.json"))...)
			if code := exitCode(t, err); code != exitUsage {
				t.Errorf("exit code %d (%v), expected %d", code, err, exitUsage)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, expected one containing %q", err, tc.want)
			}
		})
	}
}

// The workloads' serve commands check --emulated-gpus as the agent does,
// before they read the manifest or open a TEE.
func TestWorkloadEmulatedGPUsFlags(t *testing.T) {
	const kbs = "http://127.0.0.1:8080"
	tests := []flagErrorCase{
		{"modelserve without emulated", []string{"modelserve", "serve", "--model", "m.json", "--emulated-gpus", "1", "--kbs", kbs}, "--emulated-gpus needs --emulated"},
		{"modelserve without kbs", []string{"modelserve", "serve", "--model", "m.json", "--emulated", "--emulated-gpus", "1"}, "--emulated-gpus needs --kbs"},
		{"modelserve too many", []string{"modelserve", "serve", "--model", "m.json", "--emulated", "--emulated-gpus", "9", "--kbs", kbs}, "use 1 to 8"},
		{"custody negative", []string{"custody", "serve", "--keys-dir", "DIR/keys", "--emulated", "--emulated-gpus", "-1", "--kbs", kbs}, "use 1 to 8"},
		{"cleanroom without kbs", []string{"cleanroom", "serve", "--emulated", "--emulated-gpus", "2"}, "--emulated-gpus needs --kbs"},
		{"emulate too many", []string{"modelserve", "emulate", "--emulator-dir", "DIR/tee", "--emulated-gpus", "9"}, "use 1 to 8"},
	}
	checkWorkloadFlagErrors(t, tests)
}

// Workloads without a key broker have no --emulated-gpus, because only a
// key broker receives the GPUs' evidence.
func TestAggregateServeHasNoEmulatedGPUs(t *testing.T) {
	_, err := runCloister(t, "aggregate", "serve", "--emulated", "--emulated-gpus", "1")
	if err == nil || !strings.Contains(err.Error(), "unknown flag: --emulated-gpus") {
		t.Errorf("aggregate serve --emulated-gpus: %v, expected an unknown flag error", err)
	}
}

// modelserve emulate --emulated-gpus creates the GPUs, their development
// roots and their RIMs in the emulator directory, and prints where they
// are, so that the key broker can trust them before the workload starts.
func TestWorkloadEmulateCreatesGPUs(t *testing.T) {
	dir := t.TempDir()
	_, hash := keygen(t, dir, "analyst")
	manifest := writeFile(t, filepath.Join(dir, "serving.json"), `{"name": "xor", "model_sha256": "`+strings.Repeat("ab", 32)+
		`", "key_resource": "models/xor/key", "parties": [{"name": "analyst", "key_sha256": "`+hash+`"}]}`)
	teeDir := filepath.Join(dir, "tee")

	out := mustRun(t, "modelserve", "emulate", "--manifest", manifest, "--emulator-dir", teeDir, "--emulated-gpus", "2")
	gpuDir := filepath.Join(teeDir, "nvidia-gpu")
	for _, want := range []string{"EMULATED GPUs:   2 NVIDIA GPUs", filepath.Join(gpuDir, "device-identity-ca.pem"),
		filepath.Join(gpuDir, "rim-root-ca.pem"), filepath.Join(gpuDir, "rims")} {
		if !strings.Contains(out, want) {
			t.Errorf("emulate output lacks %q:\n%s", want, out)
		}
	}
	rims, err := os.ReadDir(filepath.Join(gpuDir, "rims"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rims) == 0 {
		t.Error("emulate wrote no RIMs")
	}

	// The saved GPUs are reopened only with their own count.
	_, err = runCloister(t, "modelserve", "emulate", "--manifest", manifest, "--emulator-dir", teeDir, "--emulated-gpus", "1")
	if err == nil || !strings.Contains(err.Error(), "contains 2 emulated GPUs, not 1") {
		t.Errorf("emulate with another GPU count: %v, expected an error naming both counts", err)
	}
}

// release-policy takes an optional fourth field gpu in --release, which
// requires attested GPUs for that resource only.
func TestReleasePolicyGPUField(t *testing.T) {
	measurement, digest := strings.Repeat("cd", 48), strings.Repeat("ab", 32)
	tests := []struct {
		name     string
		releases []string
		want     string
		wantErr  string
	}{
		{name: "gpu field", releases: []string{"models/xor/key:" + measurement + ":" + digest + ":gpu"},
			want: `"models/xor/key": {"tee": "snp", "measurement": "` + measurement + `", "host_data": "` + digest + `", "gpu": true}`},
		{name: "gpu field for one rule", releases: []string{"models/xor/key:" + measurement + ":" + digest + ":gpu", "custody/sealing/key:" + measurement + ":" + digest},
			want: `"custody/sealing/key": {"tee": "snp", "measurement": "` + measurement + `", "host_data": "` + digest + `", "gpu": false}`},
		{name: "other fourth field", releases: []string{"models/xor/key:" + measurement + ":" + digest + ":tpm"},
			wantErr: `the fourth field is "tpm"; use gpu to require attested GPUs, or leave it out`},
		{name: "five fields", releases: []string{"models/xor/key:" + measurement + ":" + digest + ":gpu:gpu"},
			wantErr: "use PATH:MEASUREMENT:MANIFEST_SHA256, or PATH:MEASUREMENT:MANIFEST_SHA256:gpu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"custody", "release-policy"}
			for _, r := range tc.releases {
				args = append(args, "--release", r)
			}
			out, _, err := runSplit(t, args...)
			if tc.wantErr != "" {
				if code := exitCode(t, err); code != exitUsage {
					t.Errorf("exit code %d (%v), expected %d", code, err, exitUsage)
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, expected one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("policy lacks %s:\n%s", tc.want, out)
			}
			if !strings.Contains(out, "gpus_attested(want)") {
				t.Errorf("policy does not check the GPUs:\n%s", out)
			}
		})
	}
}
