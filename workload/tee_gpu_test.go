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
	if first.GPUs == nil || first.GPUs.Emulator.GPUCount() != 2 {
		t.Fatalf("GPUs = %+v, want two emulated GPUs", first.GPUs)
	}
	if got, want := first.GPUs.Dir, filepath.Join(dir, "nvidia-gpu"); got != want {
		t.Errorf("GPU directory %s, want %s", got, want)
	}
	devices := first.Devices()
	if len(devices) != 1 || devices[0] != first.GPUs.Emulator {
		t.Errorf("Devices() = %v, want the GPU emulator", devices)
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
	if cpuOnly.GPUs != nil || cpuOnly.Devices() != nil {
		t.Errorf("TEE without EmulatedGPUs has GPUs %+v", cpuOnly.GPUs)
	}
}

func TestOpenTEEGPUsNeedEmulated(t *testing.T) {
	d, _ := HashManifest(testManifest)
	_, err := OpenTEE(context.Background(), d, TEEOptions{EmulatedGPUs: 1})
	if err == nil || !strings.Contains(err.Error(), "emulated GPUs need the emulated TEE") {
		t.Errorf("OpenTEE with emulated GPUs on hardware: %v, want an error", err)
	}
}
