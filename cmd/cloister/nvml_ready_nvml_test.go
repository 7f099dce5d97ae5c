//go:build nvml

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// readyNVML is a mock NVML of one GPU in confidential-computing mode that
// records the calls that set the ready state.
type readyNVML struct {
	*mock.Interface
	ready          uint32
	setReadyReturn nvml.Return
	setReady       []uint32
	// brokerCalls is the broker's call count at each set call.
	brokerCalls []int
}

func newReadyNVML(t *testing.T, b *fakeBroker) *readyNVML {
	t.Helper()
	m := &readyNVML{ready: nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE}
	m.Interface = &mock.Interface{
		InitFunc:     func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc: func() nvml.Return { return nvml.SUCCESS },
		SystemGetConfComputeStateFunc: func() (nvml.ConfComputeSystemState, nvml.Return) {
			return nvml.ConfComputeSystemState{Environment: nvml.CC_SYSTEM_ENVIRONMENT_PROD,
				CcFeature: nvml.CC_SYSTEM_FEATURE_ENABLED, DevToolsMode: nvml.CC_SYSTEM_DEVTOOLS_MODE_OFF}, nvml.SUCCESS
		},
		SystemGetConfComputeGpusReadyStateFunc: func() (uint32, nvml.Return) { return m.ready, nvml.SUCCESS },
		SystemSetConfComputeGpusReadyStateFunc: func(v uint32) nvml.Return {
			m.setReady = append(m.setReady, v)
			m.brokerCalls = append(m.brokerCalls, b.calls)
			if m.setReadyReturn == nvml.SUCCESS {
				m.ready = v
			}
			return m.setReadyReturn
		},
		DeviceGetCountFunc: func() (int, nvml.Return) { return 1, nvml.SUCCESS },
	}
	return m
}

func newMockReadySource(t *testing.T, reject error) (*gpuReadySource, *readyNVML) {
	t.Helper()
	b := &fakeBroker{reject: reject}
	m := newReadyNVML(t, b)
	gpus, err := nvgpu.OpenNVMLLibrary(m)
	if err != nil {
		t.Fatalf("OpenNVMLLibrary: %v", err)
	}
	return &gpuReadySource{source: b, gpus: gpus, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, m
}

func TestGPUReadyNVMLSetOnceAfterRelease(t *testing.T) {
	s, m := newMockReadySource(t, nil)
	if len(m.setReady) != 0 {
		t.Fatalf("ready state set %d times before any release", len(m.setReady))
	}
	for range 3 {
		if _, err := s.Resource(context.Background(), "default/key/model"); err != nil {
			t.Fatalf("Resource: %v", err)
		}
	}
	if len(m.setReady) != 1 {
		t.Fatalf("nvmlSystemSetConfComputeGpusReadyState called %d times, expected once", len(m.setReady))
	}
	if m.setReady[0] != nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE {
		t.Errorf("ready state set to %d, expected %d", m.setReady[0], nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE)
	}
	if m.brokerCalls[0] != 1 {
		t.Errorf("ready state set after %d broker calls, expected after the first", m.brokerCalls[0])
	}
}

func TestGPUReadyNVMLAlreadyReady(t *testing.T) {
	s, m := newMockReadySource(t, nil)
	m.ready = nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE
	if _, err := s.Resource(context.Background(), "default/key/model"); err != nil {
		t.Fatalf("Resource: %v", err)
	}
	if len(m.setReady) != 0 {
		t.Errorf("nvmlSystemSetConfComputeGpusReadyState called %d times on ready GPUs, expected never", len(m.setReady))
	}
}

func TestGPUReadyNVMLBrokerRejects(t *testing.T) {
	reject := errors.New("kbs resource default/key/model: policy denied")
	s, m := newMockReadySource(t, reject)
	if _, err := s.Resource(context.Background(), "default/key/model"); !errors.Is(err, reject) {
		t.Errorf("error %v, expected the broker's", err)
	}
	if len(m.setReady) != 0 {
		t.Errorf("nvmlSystemSetConfComputeGpusReadyState called %d times after the key broker rejected, expected never", len(m.setReady))
	}
}

// GPUs that an earlier process set ready are set not ready when the key
// broker rejects their attestation.
func TestGPUReadyNVMLRejectionClears(t *testing.T) {
	reject := kbsProblem(kbs.ProblemPolicyDeny)
	s, m := newMockReadySource(t, reject)
	m.ready = nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE
	if _, err := s.Resource(context.Background(), "default/key/model"); !errors.Is(err, reject) {
		t.Errorf("error %v, expected the broker's", err)
	}
	if len(m.setReady) != 1 || m.setReady[0] != nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE {
		t.Errorf("nvmlSystemSetConfComputeGpusReadyState calls %v, expected one with %d", m.setReady, nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE)
	}
	if m.ready != nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE {
		t.Errorf("NVML ready state %d after the rejection, expected %d", m.ready, nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE)
	}
}

func TestGPUReadyNVMLRejectionClearFails(t *testing.T) {
	reject := kbsProblem(kbs.ProblemAttestationError)
	s, m := newMockReadySource(t, reject)
	m.ready = nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE
	m.setReadyReturn = nvml.ERROR_NO_PERMISSION
	_, err := s.Resource(context.Background(), "default/key/model")
	if !errors.Is(err, reject) {
		t.Errorf("error %v, expected the broker's", err)
	}
	for _, want := range []string{"setting the GPUs not ready failed", "nvmlSystemSetConfComputeGpusReadyState failed", "ERROR_NO_PERMISSION", "NVML return code 4"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, expected one containing %q", err, want)
		}
	}
}

func TestGPUReadyNVMLSetFails(t *testing.T) {
	s, m := newMockReadySource(t, nil)
	m.setReadyReturn = nvml.ERROR_NO_PERMISSION
	secret, err := s.Resource(context.Background(), "default/key/model")
	if secret != nil {
		t.Errorf("secret %q returned after the ready state failed", secret)
	}
	for _, want := range []string{"setting the GPUs' ready state failed", "nvmlSystemSetConfComputeGpusReadyState failed", "ERROR_NO_PERMISSION", "NVML return code 4"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, expected one containing %q", err, want)
		}
	}
}

// Without a secret the agent never attests, so it could never set the
// GPUs' ready state.
func TestAgentNVIDIAGPUsNeedSecret(t *testing.T) {
	_, err := runCloister(t, "agent", "--listen", "", "--nvidia-gpus", "--kbs", "http://127.0.0.1:8080", "--", "true")
	if code := exitCode(t, err); code != exitUsage {
		t.Errorf("exit code %d (%v), expected %d", code, err, exitUsage)
	}
	if err == nil {
		t.Fatal("agent started with --nvidia-gpus and no secret")
	}
	if !strings.Contains(err.Error(), "--nvidia-gpus needs --secret or --secret-env") {
		t.Errorf("error %v, expected one about --secret", err)
	}
}
