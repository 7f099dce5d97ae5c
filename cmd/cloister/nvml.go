package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/cloister-dev/cloister/agent"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// nvidiaGPUsHelp is the help text of --nvidia-gpus.
const nvidiaGPUsHelp = "with --kbs, also attest this machine's NVIDIA GPUs (Hopper or later, in confidential-computing mode) to the key broker, reading their reports and certificate chains through NVML, set their ready state once the key broker released the first secret, and set them not ready when it rejects their attestation; needs a binary built with -tags nvml"

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

// gpuReadySetter sets and clears the GPUs' confidential-computing ready
// state, as *nvgpu.NVMLAttester does.
type gpuReadySetter interface {
	SetReady() (alreadyReady bool, err error)
	SetNotReady() (wasReady bool, err error)
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
// When the key broker rejects the attestation (see brokerRejected), the
// source sets the GPUs not ready, as NVIDIA's local GPU verifier does when
// their attestation fails. The source then tries to set them ready again
// at the next release, but NVIDIA drivers from 550.40.07 on (open-gpu-
// kernel-modules, conf_compute_api.c) reject that until the GPUs are
// reset, so that Resource call fails and the workload does not start.
//
// NOTE: a Resource call that fails for another reason, such as a network
// error, a timeout or a 5xx from the broker, leaves the state as it is,
// because the broker has not judged the evidence. GPUs that an earlier
// process set ready stay ready while the broker cannot be reached.
type gpuReadySource struct {
	source agent.SecretSource
	gpus   gpuReadySetter
	log    *slog.Logger

	mu    sync.Mutex
	ready bool
}

// Resource returns the secret at path from the wrapped source and, after
// the first secret, sets the GPUs' ready state. When setting it fails, the
// secret is zeroed and the error returned. When the key broker rejects
// the attestation, Resource sets the GPUs not ready and returns the
// broker's error, joined with the error of that call if it failed.
func (s *gpuReadySource) Resource(ctx context.Context, path string) ([]byte, error) {
	secret, err := s.source.Resource(ctx, path)
	if err != nil {
		if brokerRejected(err) {
			return nil, s.setNotReady(path, err)
		}
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

// setNotReady sets the GPUs not ready after the key broker rejected the
// attestation for path with rejection, and returns rejection joined with
// the error of that call, if any.
func (s *gpuReadySource) setNotReady(path string, rejection error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The next release sets the state again, even when clearing it failed.
	s.ready = false
	wasReady, err := s.gpus.SetNotReady()
	if err != nil {
		return errors.Join(rejection, fmt.Errorf("--nvidia-gpus: the key broker rejected the attestation for %s, but setting the GPUs not ready failed: %w", path, err))
	}
	if wasReady {
		s.log.Warn("NVIDIA GPUs set not ready after the key broker rejected their attestation", "resource", path, "error", rejection)
	}
	return rejection
}

// brokerRejected reports whether err, from kbs.Client.Resource, is the key
// broker's rejection of the attestation that carried the GPUs' evidence.
// Such a rejection is a KBS problem of type AttestationError or PolicyDeny.
// AttestationError means the broker's verifier or attestation policy
// rejected the evidence at /attest, or rejected the /auth request that
// starts the attestation. PolicyDeny means the token's appraisal was not
// accepted, or the resource policy denied the token. kbs.Client attests
// again before it returns a PolicyDeny for an earlier token, so the denial
// is for the latest evidence.
//
// Other errors are not rejections of the evidence: a network error, a
// timeout, an HTTP status that is not a KBS problem (such as a 503) and an
// invalid response. Nor are the problems that concern the token or the
// broker itself (TokenNotFound, TokenVerifierError, PolicyEngineError,
// PluginInternalError, JweError and the rest). The GPUs' own failure to
// produce evidence is no rejection either, because the broker never saw
// it.
func brokerRejected(err error) bool {
	var p *kbs.Problem
	if !errors.As(err, &p) || !strings.HasPrefix(p.Type, kbs.ProblemTypePrefix) {
		return false
	}
	switch p.Variant() {
	case kbs.ProblemAttestationError, kbs.ProblemPolicyDeny:
		return true
	}
	return false
}
