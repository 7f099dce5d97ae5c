//go:build nvml

package nvgpu

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/cloister-dev/cloister/attest"
)

// NVMLSupported is true in a binary built with the nvml build tag.
const NVMLSupported = true

// NVMLAttester collects the evidence of the machine's NVIDIA GPUs through
// NVML (libnvidia-ml.so.1 of the NVIDIA driver, loaded at run time). Like
// NVIDIA's local GPU verifier, it reads every GPU's attestation report for
// the caller's nonce (nvmlDeviceGetConfComputeGpuAttestationReport) and
// its attestation certificate chain (nvmlDeviceGetConfComputeGpuCertificate).
// The evidence has the form of Emulator.Attest, so the nvidia-gpu verifier
// reads both alike. It is safe for concurrent use, because Attest and
// SetReady serialize the NVML calls.
//
// NOTE: this code has run only against go-nvml's mock, not on a GPU.
type NVMLAttester struct {
	lib    nvml.Interface
	mu     sync.Mutex
	status nvmlStatus
}

// OpenNVML loads NVML and checks that confidential computing is on, that
// developer tools mode is off, that the environment is PROD (see
// checkEnvironment) and that NVML enumerates at least one GPU.
// It then shuts NVML down, and each Attest call initializes it anew.
func OpenNVML() (*NVMLAttester, error) { return OpenNVMLLibrary(nvml.New()) }

// OpenNVMLLibrary is OpenNVML with the NVML implementation lib, such as
// go-nvml's mock in tests.
func OpenNVMLLibrary(lib nvml.Interface) (*NVMLAttester, error) {
	a := &NVMLAttester{lib: lib}
	err := a.session(func() error {
		var err error
		a.status, err = a.readStatus()
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Name returns "nvidia-gpu".
func (a *NVMLAttester) Name() string { return string(attest.TEENVGPU) }

// GPUCount returns the number of GPUs that NVML enumerated at OpenNVML.
func (a *NVMLAttester) GPUCount() int { return a.status.GPUs }

// Ready reports whether the GPUs accepted work at OpenNVML or after
// SetReady. They do not until a verifier that accepted their evidence sets
// the ready state, as SetReady does.
func (a *NVMLAttester) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status.Ready
}

// SetReady sets the GPUs' confidential-computing ready state
// (nvmlSystemSetConfComputeGpusReadyState) so that they accept work, unless
// NVML already reports them ready, and returns whether it was already set.
// Call it only after a verifier accepted the GPUs' evidence, because a GPU
// in the ready state runs CUDA work without further checks. Before it sets
// the state, SetReady checks again that confidential computing is on,
// developer tools mode off and the environment PROD.
//
// NOTE: NVML's header (go-nvml v0.13.4-1) does not say how long the state
// holds. This code assumes that it holds until the GPUs are reset or the
// VM restarts.
func (a *NVMLAttester) SetReady() (alreadyReady bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	err = a.session(func() error {
		status, err := a.readStatus()
		if err != nil {
			return err
		}
		if status.Ready {
			alreadyReady = true
			return nil
		}
		if ret := a.lib.SystemSetConfComputeGpusReadyState(nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE); ret != nvml.SUCCESS {
			return fmt.Errorf("nvgpu: %s; the GPUs do not accept work", nvmlError("nvmlSystemSetConfComputeGpusReadyState", ret))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	a.status.Ready = true
	return alreadyReady, nil
}

// SetNotReady clears the GPUs' confidential-computing ready state
// (nvmlSystemSetConfComputeGpusReadyState) so that they reject work, when
// NVML reports them ready, and returns whether they were ready. Call it
// when a verifier rejected the GPUs' evidence, as NVIDIA's local GPU
// verifier does. Unlike SetReady, it does not check the confidential-
// computing state first, because clearing the ready state is safe in any
// state. Clearing it is final on NVIDIA drivers from 550.40.07 on: their
// nvmlSystemSetConfComputeGpusReadyState rejects setting GPUs ready again
// after they were set not ready, until the GPUs are reset.
func (a *NVMLAttester) SetNotReady() (wasReady bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	err = a.session(func() error {
		ready, ret := a.lib.SystemGetConfComputeGpusReadyState()
		if ret != nvml.SUCCESS {
			return fmt.Errorf("nvgpu: %s", nvmlError("nvmlSystemGetConfComputeGpusReadyState", ret))
		}
		if ready != nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE {
			return nil
		}
		wasReady = true
		if ret := a.lib.SystemSetConfComputeGpusReadyState(nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE); ret != nvml.SUCCESS {
			return fmt.Errorf("nvgpu: %s; the GPUs still accept work, so reset them or stop the VM", nvmlError("nvmlSystemSetConfComputeGpusReadyState", ret))
		}
		return nil
	})
	if err != nil {
		return wasReady, err
	}
	a.status.Ready = false
	return wasReady, nil
}

// Attest returns the evidence of every GPU for one nonce, reportData,
// zero-padded to 32 bytes when shorter. It returns an error when
// reportData is longer, when confidential computing is off, or when any
// GPU's report or chain cannot be read or fails the checks of
// collectedGPU.entry.
func (a *NVMLAttester) Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error) {
	nonce, err := reportDataNonce(reportData)
	if err != nil {
		return nil, fmt.Errorf("nvgpu: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()

	var ev *attest.Evidence
	err = a.session(func() error {
		status, err := a.readStatus()
		if err != nil {
			return err
		}
		gpus, err := a.collect(ctx, status.GPUs, nonce)
		if err != nil {
			return err
		}
		ev, err = hardwareEvidence(gpus, nonce)
		return err
	})
	return ev, err
}

// session initializes NVML, runs fn and shuts NVML down. A failed shutdown
// fails the session too, because it leaves the driver in a state that the
// next call should not trust.
func (a *NVMLAttester) session(fn func() error) error {
	if ret := a.lib.Init(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvgpu: %s; load the NVIDIA driver inside the confidential VM (libnvidia-ml.so.1 must be on the library path)", nvmlError("nvmlInit", ret))
	}
	err := fn()
	if ret := a.lib.Shutdown(); ret != nvml.SUCCESS {
		err = errors.Join(err, fmt.Errorf("nvgpu: %s", nvmlError("nvmlShutdown", ret)))
	}
	return err
}

// readStatus checks the machine's confidential-computing state and counts
// the GPUs.
func (a *NVMLAttester) readStatus() (nvmlStatus, error) {
	state, ret := a.lib.SystemGetConfComputeState()
	if ret != nvml.SUCCESS {
		return nvmlStatus{}, fmt.Errorf("nvgpu: %s; install an NVIDIA driver with confidential-computing support", nvmlError("nvmlSystemGetConfComputeState", ret))
	}
	if state.CcFeature != nvml.CC_SYSTEM_FEATURE_ENABLED {
		return nvmlStatus{}, fmt.Errorf("nvgpu: confidential computing is off (nvmlSystemGetConfComputeState ccFeature %d); turn CC mode on for the GPUs on the host and start the VM again", state.CcFeature)
	}
	// In developer tools mode the GPU allows debugging and profiling of
	// confidential workloads. The verifier cannot tell that mode from the
	// report as Cloister decodes it, so the attester rejects it here.
	if state.DevToolsMode != nvml.CC_SYSTEM_DEVTOOLS_MODE_OFF {
		return nvmlStatus{}, fmt.Errorf("nvgpu: the GPUs are in confidential-computing developer tools mode (nvmlSystemGetConfComputeState devToolsMode %d), which permits debugging; set CC mode to on, not devtools, on the host", state.DevToolsMode)
	}
	if err := a.checkEnvironment(state.Environment); err != nil {
		return nvmlStatus{}, err
	}
	ready, ret := a.lib.SystemGetConfComputeGpusReadyState()
	if ret != nvml.SUCCESS {
		return nvmlStatus{}, fmt.Errorf("nvgpu: %s", nvmlError("nvmlSystemGetConfComputeGpusReadyState", ret))
	}
	count, ret := a.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nvmlStatus{}, fmt.Errorf("nvgpu: %s", nvmlError("nvmlDeviceGetCount", ret))
	}
	if count < 1 || count > maxGPUs {
		return nvmlStatus{}, fmt.Errorf("nvgpu: NVML enumerates %d GPUs, but Cloister attests 1 to %d; pass 1 to %d GPUs through to the VM", count, maxGPUs, maxGPUs)
	}
	return nvmlStatus{GPUs: count, Ready: ready == nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE}, nil
}

// firstDriverWithProdEnvironment is the major version of the first NVIDIA
// driver branch (550.40.07) whose nvmlSystemGetConfComputeState reports
// the PROD environment for GPUs in CC mode. From that version on, the
// driver reports SIM only in developer tools mode. Branches 535 and 545
// report SIM for every GPU in CC mode, production GPUs included
// (confComputeApiCtrlCmdSystemGetCapabilities in conf_compute_api.c of
// open-gpu-kernel-modules, tags 535.43.02 to 535.288.01 and 545.23.06 to
// 545.29.06).
const firstDriverWithProdEnvironment = 550

// checkEnvironment rejects a confidential-computing environment other than
// PROD. SIM marks a simulated GPU TEE, which the driver also reports in
// developer tools mode, so the attester rejects it before the workload
// starts. The exception is a driver before firstDriverWithProdEnvironment,
// which reports SIM for every GPU in CC mode. The evidence does not carry
// the environment, so the key broker cannot check it. Its verifier checks
// each chain against its roots, which are NVIDIA's production Device
// Identity CA unless development roots were added.
func (a *NVMLAttester) checkEnvironment(environment uint32) error {
	switch environment {
	case nvml.CC_SYSTEM_ENVIRONMENT_PROD:
		return nil
	case nvml.CC_SYSTEM_ENVIRONMENT_SIM:
	default:
		return fmt.Errorf("nvgpu: nvmlSystemGetConfComputeState reports environment %d, which is neither PROD (%d) nor SIM (%d); turn CC mode on for the GPUs on the host, start the VM again and check the driver", environment, nvml.CC_SYSTEM_ENVIRONMENT_PROD, nvml.CC_SYSTEM_ENVIRONMENT_SIM)
	}

	driver, ret := a.lib.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		return fmt.Errorf("nvgpu: nvmlSystemGetConfComputeState reports the SIM environment (%d), and Cloister needs the driver version to tell whether that is a simulated GPU TEE: %s", environment, nvmlError("nvmlSystemGetDriverVersion", ret))
	}
	major, _, _ := strings.Cut(strings.TrimSpace(driver), ".")
	branch, err := strconv.Atoi(major)
	if err != nil {
		return fmt.Errorf("nvgpu: nvmlSystemGetConfComputeState reports the SIM environment (%d), and nvmlSystemGetDriverVersion returned %q, which does not start with a major version; install an NVIDIA driver from branch %d or later", environment, driver, firstDriverWithProdEnvironment)
	}
	if branch < firstDriverWithProdEnvironment {
		// NOTE: these drivers report SIM for production GPUs too, so a
		// simulated GPU TEE passes here and only the verifier's chain
		// and RIM checks can reject it.
		return nil
	}
	return fmt.Errorf("nvgpu: nvmlSystemGetConfComputeState reports the SIM environment (%d) with driver %s, so the GPUs are a simulated TEE, not a production one (PROD, %d); set CC mode to on, not devtools, for the GPUs on the host and start the VM again", environment, driver, nvml.CC_SYSTEM_ENVIRONMENT_PROD)
}

// collect reads the report, chain, identity and versions of GPUs 0 to
// count-1.
func (a *NVMLAttester) collect(ctx context.Context, count int, nonce [NonceSize]byte) ([]collectedGPU, error) {
	driver, ret := a.lib.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvgpu: %s", nvmlError("nvmlSystemGetDriverVersion", ret))
	}
	gpus := make([]collectedGPU, count)
	for i := range gpus {
		// NOTE: an NVML call cannot be canceled, so a GPU that hangs in
		// one blocks Attest past ctx's deadline.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		g := &gpus[i]
		g.Index, g.DriverVersion = i, driver
		if err := a.collectGPU(g, nonce); err != nil {
			return nil, fmt.Errorf("nvgpu: %s: %w", g.name(), err)
		}
	}
	return gpus, nil
}

// collectGPU fills g, whose Index is set, from NVML.
func (a *NVMLAttester) collectGPU(g *collectedGPU, nonce [NonceSize]byte) error {
	device, ret := a.lib.DeviceGetHandleByIndex(g.Index)
	if ret != nvml.SUCCESS {
		return errors.New(nvmlError("nvmlDeviceGetHandleByIndex", ret))
	}
	if g.UUID, ret = device.GetUUID(); ret != nvml.SUCCESS {
		return errors.New(nvmlError("nvmlDeviceGetUUID", ret))
	}
	arch, ret := device.GetArchitecture()
	if ret != nvml.SUCCESS {
		return errors.New(nvmlError("nvmlDeviceGetArchitecture", ret))
	}
	var err error
	if g.Arch, err = architectureName(arch); err != nil {
		return err
	}
	if g.VBIOSVersion, ret = device.GetVbiosVersion(); ret != nvml.SUCCESS {
		return errors.New(nvmlError("nvmlDeviceGetVbiosVersion", ret))
	}

	// NVML sends Nonce to the GPU as the SPDM requester nonce.
	report := nvml.ConfComputeGpuAttestationReport{Nonce: nonce}
	if ret := device.GetConfComputeGpuAttestationReport(&report); ret != nvml.SUCCESS {
		return errors.New(nvmlError("nvmlDeviceGetConfComputeGpuAttestationReport", ret))
	}
	if report.AttestationReportSize == 0 || int(report.AttestationReportSize) > len(report.AttestationReport) {
		return fmt.Errorf("nvmlDeviceGetConfComputeGpuAttestationReport returned a report size of %d bytes, outside 1..%d", report.AttestationReportSize, len(report.AttestationReport))
	}
	g.Report = append([]byte(nil), report.AttestationReport[:report.AttestationReportSize]...)

	certs, ret := device.GetConfComputeGpuCertificate()
	if ret != nvml.SUCCESS {
		return errors.New(nvmlError("nvmlDeviceGetConfComputeGpuCertificate", ret))
	}
	if int(certs.AttestationCertChainSize) > len(certs.AttestationCertChain) {
		return fmt.Errorf("nvmlDeviceGetConfComputeGpuCertificate returned an attestation chain size of %d bytes, more than the %d-byte buffer", certs.AttestationCertChainSize, len(certs.AttestationCertChain))
	}
	g.Chain = append([]byte(nil), certs.AttestationCertChain[:certs.AttestationCertChainSize]...)
	return nil
}

// architectureName returns the architecture name that Trustee's attester
// writes into the evidence, for the architectures with confidential
// computing.
func architectureName(arch nvml.DeviceArchitecture) (string, error) {
	switch arch {
	case nvml.DEVICE_ARCH_HOPPER:
		return "HOPPER", nil
	case nvml.DEVICE_ARCH_BLACKWELL:
		return "BLACKWELL", nil
	}
	return "", fmt.Errorf("nvmlDeviceGetArchitecture returned architecture %d, which has no confidential computing that Cloister attests (Hopper is %d, Blackwell %d)", arch, nvml.DEVICE_ARCH_HOPPER, nvml.DEVICE_ARCH_BLACKWELL)
}

// nvmlError describes a failed NVML call with its return code.
func nvmlError(call string, ret nvml.Return) string {
	return fmt.Sprintf("%s failed: %s (NVML return code %d)", call, ret.Error(), int32(ret))
}
