package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/tee/nvgpu"
)

func TestAgentNVIDIAGPUsFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"without kbs", []string{"--nvidia-gpus"}, "--nvidia-gpus needs --kbs"},
		{"with emulated GPUs", []string{"--nvidia-gpus", "--emulated", "--emulated-gpus", "1", "--kbs", "http://127.0.0.1:8080"}, "exclude each other"},
	}
	if !nvgpu.NVMLSupported {
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"without NVML build", []string{"--nvidia-gpus", "--kbs", "http://127.0.0.1:8080"}, "rebuild with -tags nvml"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"agent", "--listen", ""}, tc.args...), "--", "true")
			_, err := runCloister(t, args...)
			if code := exitCode(t, err); code != exitUsage {
				t.Errorf("exit code %d (%v), expected %d", code, err, exitUsage)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, expected one containing %q", err, tc.want)
			}
		})
	}
}

func TestAgentKBSClientDevices(t *testing.T) {
	c, err := kbsClient(agentFlags{kbsURL: "http://127.0.0.1:8080"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Devices) != 0 {
		t.Errorf("%d device attesters without GPUs, expected none", len(c.Devices))
	}
}

// The workloads' serve commands check --nvidia-gpus as the agent does,
// before they read the manifest or open a TEE.
func TestWorkloadNVIDIAGPUsFlags(t *testing.T) {
	const kbs = "http://127.0.0.1:8080"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"modelserve without kbs", []string{"modelserve", "serve", "--model", "m.json", "--nvidia-gpus"}, "--nvidia-gpus needs --kbs"},
		{"custody with emulated GPUs", []string{"custody", "serve", "--keys-dir", "DIR/keys", "--emulated", "--emulated-gpus", "1", "--nvidia-gpus", "--kbs", kbs}, "exclude each other"},
	}
	if !nvgpu.NVMLSupported {
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"cleanroom without NVML build", []string{"cleanroom", "serve", "--nvidia-gpus", "--kbs", kbs}, "rebuild with -tags nvml"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
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
