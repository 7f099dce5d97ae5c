package workload

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// OpenTEE with EmulatedGPUs saves the GPUs in the emulator directory,
// reloads the same GPUs later, and returns them as the key broker
// client's devices. A TEE without them has no devices.
func TestOpenTEEEmulatedGPUs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d, _ := HashManifest(testManifest)
	first, err := OpenTEE(ctx, d, TEEOptions{Emulated: true, Measurement: testMeasurement, EmulatorDir: dir, EmulatedGPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if first.GPUs == nil {
		t.Fatal("GPUs = nil, want two emulated GPUs")
	}
	if n := first.GPUs.Emulator.GPUCount(); n != 2 {
		t.Fatalf("%d emulated GPUs, want 2", n)
	}
	if got, want := first.GPUs.Dir, filepath.Join(dir, "nvidia-gpu"); got != want {
		t.Errorf("GPU directory %s, want %s", got, want)
	}
	devices := first.Devices()
	if len(devices) != 1 {
		t.Fatalf("Devices() = %v, want one device", devices)
	}
	if devices[0] != first.GPUs.Emulator {
		t.Errorf("Devices()[0] = %v, want the GPU emulator", devices[0])
	}

	again, err := OpenTEE(ctx, d, TEEOptions{Emulated: true, EmulatorDir: dir, EmulatedGPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !again.GPUs.Emulator.Roots()[0].Equal(first.GPUs.Emulator.Roots()[0]) {
		t.Error("reopening the emulator directory created another GPU development root")
	}

	cpuOnly, err := OpenTEE(ctx, d, TEEOptions{Emulated: true, EmulatorDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if cpuOnly.GPUs != nil {
		t.Errorf("TEE without EmulatedGPUs has GPUs %+v", cpuOnly.GPUs)
	}
	if devices := cpuOnly.Devices(); devices != nil {
		t.Errorf("TEE without EmulatedGPUs has devices %v", devices)
	}
}

func TestOpenTEEGPUsNeedEmulated(t *testing.T) {
	d, _ := HashManifest(testManifest)
	_, err := OpenTEE(context.Background(), d, TEEOptions{EmulatedGPUs: 1})
	if err == nil || !strings.Contains(err.Error(), "emulated GPUs need the emulated TEE") {
		t.Errorf("OpenTEE with emulated GPUs on hardware: %v, want an error", err)
	}
}
