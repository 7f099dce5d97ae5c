package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cloister-dev/cloister/agent"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// nvidiaGPUsHelp is the help text of --nvidia-gpus.
const nvidiaGPUsHelp = "with --kbs, also attest this machine's NVIDIA GPUs (Hopper or later, in confidential-computing mode) to the key broker, reading their reports and certificate chains through NVML, and set their ready state once the key broker released the first secret; needs a binary built with -tags nvml"

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
	// gpuReadySource does after the key broker released a secret.
	log.Info("attesting NVIDIA GPUs through NVML", "gpus", gpus.GPUCount(), "accepting_work", gpus.Ready())
	return gpus, nil
}

// gpuReadySetter sets the GPUs' confidential-computing ready state, as
// *nvgpu.NVMLAttester does.
type gpuReadySetter interface {
	SetReady() (alreadyReady bool, err error)
}

// gpuReadySource is the secret source of --nvidia-gpus. It sets the GPUs'
// ready state after the key broker released the first secret. Only a
// released secret shows that the broker accepted the attestation with the
// GPUs' evidence, because the broker issues a token also for evidence
// whose appraisal failed and its resource policy decides on that token.
// A failure to set the state fails that Resource call, so the workload
// does not start believing the GPUs are ready.
//
// The state is set once per process, so a later re-attestation with a new
// token leaves it alone. SetReady calls NVML's setter only when NVML
// reports the GPUs not ready, as NVIDIA's local GPU verifier (nvtrust's
// cc_admin.py) does.
//
// NOTE: NVIDIA's local GPU verifier also sets the GPUs not ready when
// their attestation fails. This source does not, so GPUs that an earlier
// process set ready stay ready after the key broker rejects them.
type gpuReadySource struct {
	source agent.SecretSource
	gpus   gpuReadySetter
	log    *slog.Logger

	mu    sync.Mutex
	ready bool
}

// Resource returns the secret at path from the wrapped source and, after
// the first secret, sets the GPUs' ready state. When setting it fails, the
// secret is zeroed and the error returned.
func (s *gpuReadySource) Resource(ctx context.Context, path string) ([]byte, error) {
	secret, err := s.source.Resource(ctx, path)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return secret, nil
	}
	alreadyReady, err := s.gpus.SetReady()
	if err != nil {
		clear(secret)
		return nil, fmt.Errorf("--nvidia-gpus: the key broker released %s, but setting the GPUs' ready state failed, so they do not accept work and the workload does not start: %w", path, err)
	}
	s.ready = true
	s.log.Info("NVIDIA GPUs accept work after the key broker accepted their evidence", "resource", path, "already_ready", alreadyReady)
	return secret, nil
}
