package agent

import (
	"os"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/collateral"
)

// OpenGPUEmulator creates the GPUs in the emulator directory once and
// reloads the same development roots afterwards, with the RIMs beside them.
func TestOpenGPUEmulatorKeepsRoots(t *testing.T) {
	dir := t.TempDir()
	first, err := OpenGPUEmulator(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	second, err := OpenGPUEmulator(dir, 2)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	for i, root := range first.Emulator.Roots() {
		if !root.Equal(second.Emulator.Roots()[i]) {
			t.Errorf("root %d changed on reopening", i)
		}
	}
	for _, path := range second.RootPaths {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("root file: %v", err)
		}
	}
	rims, err := collateral.LoadPath(second.RIMDir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rims.OfKind(collateral.KindXML)); n != 2 {
		t.Errorf("%d RIMs in %s, expected 2", n, second.RIMDir)
	}

	_, err = OpenGPUEmulator(dir, 3)
	if err == nil || !strings.Contains(err.Error(), "contains 2 emulated GPUs, not 3") {
		t.Errorf("reopening with another count: error %v, expected one naming both counts", err)
	}
}

func TestOpenAttesterGPUsNeedEmulated(t *testing.T) {
	if _, err := OpenAttester(AttesterOptions{EmulatedGPUs: 1}); err == nil {
		t.Error("OpenAttester accepted emulated GPUs beside a hardware TEE")
	}
}

func TestOpenGPUEmulatorInMemory(t *testing.T) {
	sel, err := OpenGPUEmulator("", 1)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Dir != "" {
		t.Errorf("in-memory selection has directory %s, expected none", sel.Dir)
	}
	if sel.RootPaths != nil {
		t.Errorf("in-memory selection has root files %v, expected none", sel.RootPaths)
	}
	if n := sel.Emulator.GPUCount(); n != 1 {
		t.Errorf("in-memory selection has %d GPUs, expected 1", n)
	}
}
