package main

import (
	"fmt"
	"log/slog"

	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// nvidiaGPUsHelp is the help text of --nvidia-gpus.
const nvidiaGPUsHelp = "with --kbs, also attest this machine's NVIDIA GPUs (Hopper or later, in confidential-computing mode) to the key broker, reading their reports and certificate chains through NVML; needs a binary built with -tags nvml"

// checkNVIDIAGPUs checks --nvidia-gpus against --emulated-gpus and --kbs
// and against the build, before anything is opened.
func checkNVIDIAGPUs(nvidiaGPUs bool, emulatedGPUs int, kbsURL string) error {
	switch {
	case !nvidiaGPUs:
		return nil
	case emulatedGPUs > 0:
		return usageError("--nvidia-gpus and --emulated-gpus exclude each other: the key broker receives the evidence of one set of NVIDIA GPUs; leave one out")
	case kbsURL == "":
		return usageError("--nvidia-gpus needs --kbs: only the key broker receives the GPUs' evidence, not the RA-TLS clients")
	case !nvgpu.NVMLSupported:
		return usageError("--nvidia-gpus: %v", nvgpu.ErrNVMLNotBuilt)
	}
	return nil
}

// openNVIDIAGPUs opens the NVML attester of this machine's GPUs and logs
// to log how many there are.
func openNVIDIAGPUs(log *slog.Logger) (*nvgpu.NVMLAttester, error) {
	gpus, err := nvgpu.OpenNVML()
	if err != nil {
		return nil, &exitError{code: exitRejected, err: fmt.Errorf("--nvidia-gpus: %w", err)}
	}
	// The GPUs accept work only once their ready state is set, which
	// Cloister leaves to the operator after the key broker accepted them.
	log.Info("attesting NVIDIA GPUs through NVML", "gpus", gpus.GPUCount(), "accepting_work", gpus.Ready())
	return gpus, nil
}
