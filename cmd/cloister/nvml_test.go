package main

import (
	"testing"

	"github.com/cloister-dev/cloister/tee/nvgpu"
)

func TestAgentNVIDIAGPUsFlags(t *testing.T) {
	tests := []flagErrorCase{
		{"without kbs", []string{"--nvidia-gpus"}, "--nvidia-gpus needs --kbs"},
		{"with emulated GPUs", []string{"--nvidia-gpus", "--emulated", "--emulated-gpus", "1", "--kbs", "http://127.0.0.1:8080"}, "exclude each other"},
	}
	if !nvgpu.NVMLSupported {
		tests = append(tests, flagErrorCase{"without NVML build", []string{"--nvidia-gpus", "--kbs", "http://127.0.0.1:8080"}, "rebuild with -tags nvml"})
	}
	checkAgentFlagErrors(t, tests)
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
	tests := []flagErrorCase{
		{"modelserve without kbs", []string{"modelserve", "serve", "--model", "m.json", "--nvidia-gpus"}, "--nvidia-gpus needs --kbs"},
		{"custody with emulated GPUs", []string{"custody", "serve", "--keys-dir", "DIR/keys", "--emulated", "--emulated-gpus", "1", "--nvidia-gpus", "--kbs", kbs}, "exclude each other"},
	}
	if !nvgpu.NVMLSupported {
		tests = append(tests, flagErrorCase{"cleanroom without NVML build", []string{"cleanroom", "serve", "--nvidia-gpus", "--kbs", kbs}, "rebuild with -tags nvml"})
	}
	checkWorkloadFlagErrors(t, tests)
}
