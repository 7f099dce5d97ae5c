package agent

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cloister-dev/cloister/internal/emudir"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// GPUSelection is a set of emulated NVIDIA GPUs and, when they are saved,
// the files a key broker needs to verify their evidence.
type GPUSelection struct {
	Emulator *nvgpu.Emulator
	// Dir is the directory of the emulator's keys and certificates, and it
	// contains RootPaths and RIMDir. It is empty for GPUs only in memory.
	Dir string
	// RootPaths are the development Device Identity CA and RIM root, which
	// a key broker needs as trust anchors for nvidia-gpu.
	RootPaths []string
	// RIMDir contains the driver and VBIOS RIMs, for a key broker's
	// --collateral nvidia-gpu=.
	RIMDir string
}

// gpuDirName is the subdirectory of an emulator directory that contains
// the emulated GPUs.
const gpuDirName = "nvidia-gpu"

// OpenGPUEmulator returns gpus emulated NVIDIA GPUs. With emulatorDir set,
// it reloads them from emulatorDir/nvidia-gpu, or creates and saves them
// there, so that their development roots survive restarts. It then writes
// their RIMs, signed anew, to emulatorDir/nvidia-gpu/rims. Saved GPUs of
// another count are an error, because their roots are the ones a key
// broker already trusts.
func OpenGPUEmulator(emulatorDir string, gpus int) (*GPUSelection, error) {
	if emulatorDir == "" {
		e, err := nvgpu.NewEmulator(nvgpu.EmulatorOptions{GPUs: gpus})
		if err != nil {
			return nil, err
		}
		return &GPUSelection{Emulator: e}, nil
	}
	dir := filepath.Join(emulatorDir, gpuDirName)
	e, err := loadOrCreateGPUs(dir, gpus)
	if err != nil {
		return nil, err
	}
	sel := &GPUSelection{Emulator: e, Dir: dir, RIMDir: filepath.Join(dir, "rims")}
	for _, name := range []string{nvgpu.RootFile, nvgpu.RIMRootFile} {
		sel.RootPaths = append(sel.RootPaths, filepath.Join(dir, name))
	}
	rims, err := e.RIMFiles()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(sel.RIMDir, 0o755); err != nil {
		return nil, err
	}
	for name, data := range rims {
		if err := emudir.WriteFile(filepath.Join(sel.RIMDir, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("writing the emulated GPU RIMs: %w", err)
		}
	}
	return sel, nil
}

func loadOrCreateGPUs(dir string, gpus int) (*nvgpu.Emulator, error) {
	if _, err := os.Stat(filepath.Join(dir, nvgpu.RootFile)); err == nil {
		e, err := nvgpu.LoadEmulator(dir)
		if err != nil {
			return nil, err
		}
		if e.GPUCount() != gpus {
			return nil, fmt.Errorf("%s contains %d emulated GPUs, not %d; pass that count, or remove the directory to create new GPUs with new development roots", dir, e.GPUCount(), gpus)
		}
		return e, nil
	}
	e, err := nvgpu.NewEmulator(nvgpu.EmulatorOptions{GPUs: gpus})
	if err != nil {
		return nil, err
	}
	if err := e.Save(dir); err != nil {
		return nil, err
	}
	return e, nil
}
