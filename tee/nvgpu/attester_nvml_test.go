//go:build nvml

package nvgpu

import (
	"context"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"github.com/cloister-dev/cloister/attest"
)

// mockNVML is an NVML whose GPUs are an emulator's: each
// nvmlDeviceGetConfComputeGpuAttestationReport call returns a new report
// of the emulator's GPU for the nonce in the request. It counts Init and
// Shutdown calls and the calls that set the ready state.
type mockNVML struct {
	*mock.Interface
	emulator *Emulator
	state    nvml.ConfComputeSystemState
	// devices are the mock devices, whose functions a test may replace.
	devices          []*mock.Device
	inits, shutdowns int
	initReturn       nvml.Return
	// ready is the ready state that NVML reports; readyReturn and
	// setReadyReturn are the results of getting and setting it.
	ready                       uint32
	readyReturn, setReadyReturn nvml.Return
	// setReady holds the values of the calls that set the ready state.
	setReady            []uint32
	reportSizeOverride  uint32
	reportNonceOverride bool
}

func newMockNVML(t *testing.T, gpus int) *mockNVML {
	t.Helper()
	m := &mockNVML{
		emulator: newEmulator(t, gpus),
		state: nvml.ConfComputeSystemState{
			Environment: nvml.CC_SYSTEM_ENVIRONMENT_PROD, CcFeature: nvml.CC_SYSTEM_FEATURE_ENABLED,
			DevToolsMode: nvml.CC_SYSTEM_DEVTOOLS_MODE_OFF,
		},
		initReturn: nvml.SUCCESS,
		ready:      nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE,
	}
	for _, g := range m.emulator.gpus {
		m.devices = append(m.devices, m.device(t, g))
	}
	m.Interface = &mock.Interface{
		InitFunc: func() nvml.Return {
			m.inits++
			return m.initReturn
		},
		ShutdownFunc: func() nvml.Return {
			m.shutdowns++
			return nvml.SUCCESS
		},
		SystemGetConfComputeStateFunc:          func() (nvml.ConfComputeSystemState, nvml.Return) { return m.state, nvml.SUCCESS },
		SystemGetConfComputeGpusReadyStateFunc: func() (uint32, nvml.Return) { return m.ready, m.readyReturn },
		SystemSetConfComputeGpusReadyStateFunc: func(v uint32) nvml.Return {
			m.setReady = append(m.setReady, v)
			if m.setReadyReturn == nvml.SUCCESS {
				m.ready = v
			}
			return m.setReadyReturn
		},
		SystemGetDriverVersionFunc: func() (string, nvml.Return) { return emulatedDriverVersion, nvml.SUCCESS },
		DeviceGetCountFunc:         func() (int, nvml.Return) { return len(m.devices), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if i < 0 || i >= len(m.devices) {
				return nil, nvml.ERROR_INVALID_ARGUMENT
			}
			return m.devices[i], nvml.SUCCESS
		},
	}
	return m
}

// device returns a mock device that reports g's identity, report and
// chain.
func (m *mockNVML) device(t *testing.T, g *emulatedGPU) *mock.Device {
	chain := m.emulator.chainPEM(g)
	return &mock.Device{
		GetUUIDFunc:         func() (string, nvml.Return) { return g.uuid, nvml.SUCCESS },
		GetArchitectureFunc: func() (nvml.DeviceArchitecture, nvml.Return) { return nvml.DEVICE_ARCH_HOPPER, nvml.SUCCESS },
		GetVbiosVersionFunc: func() (string, nvml.Return) { return emulatedVBIOSText, nvml.SUCCESS },
		GetConfComputeGpuAttestationReportFunc: func(r *nvml.ConfComputeGpuAttestationReport) nvml.Return {
			nonce := r.Nonce
			if m.reportNonceOverride {
				nonce[0] ^= 0xff
			}
			report, err := m.emulator.report(g, nonce)
			if err != nil {
				t.Error(err)
				return nvml.ERROR_UNKNOWN
			}
			r.AttestationReportSize = uint32(copy(r.AttestationReport[:], report))
			if m.reportSizeOverride != 0 {
				r.AttestationReportSize = m.reportSizeOverride
			}
			return nvml.SUCCESS
		},
		GetConfComputeGpuCertificateFunc: func() (nvml.ConfComputeGpuCertificate, nvml.Return) {
			var c nvml.ConfComputeGpuCertificate
			c.AttestationCertChainSize = uint32(copy(c.AttestationCertChain[:], chain))
			return c, nvml.SUCCESS
		},
	}
}

func TestNVMLAttesterVerifies(t *testing.T) {
	m := newMockNVML(t, 2)
	a, err := OpenNVMLLibrary(m)
	if err != nil {
		t.Fatalf("OpenNVMLLibrary: %v", err)
	}
	if a.GPUCount() != 2 {
		t.Errorf("GPUCount %d, expected 2", a.GPUCount())
	}
	if a.Ready() {
		t.Error("Ready is true, but NVML reports the GPUs not ready")
	}
	if a.Name() != string(attest.TEENVGPU) {
		t.Errorf("name %q, expected %s", a.Name(), attest.TEENVGPU)
	}

	nonce := emulatorNonce(t)
	ev, err := a.Attest(context.Background(), nonce)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	claims, err := verifyEvidence(t, ev, emulatorOptions(t, m.emulator, nonce))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, name := range []string{"spdm-signature", "certificate-chain", "fwid", rimCheck, "nonce"} {
		checkResult(t, claims, name, attest.CheckPassed)
	}
	if m.inits != 2 {
		t.Errorf("nvmlInit called %d times, expected 2 (open and attest)", m.inits)
	}
	if m.shutdowns != m.inits {
		t.Errorf("nvmlShutdown called %d times after %d nvmlInit calls", m.shutdowns, m.inits)
	}
}

func TestNVMLAttesterRejects(t *testing.T) {
	tests := []struct {
		name string
		// change breaks the mock after OpenNVMLLibrary, or before it when
		// atOpen is set.
		change   func(m *mockNVML)
		atOpen   bool
		contains []string
	}{
		{
			name:     "init failure",
			change:   func(m *mockNVML) { m.initReturn = nvml.ERROR_LIBRARY_NOT_FOUND },
			atOpen:   true,
			contains: []string{"nvmlInit failed", "ERROR_LIBRARY_NOT_FOUND", "NVML return code 12"},
		},
		{
			name:     "CC off",
			change:   func(m *mockNVML) { m.state.CcFeature = nvml.CC_SYSTEM_FEATURE_DISABLED },
			atOpen:   true,
			contains: []string{"confidential computing is off"},
		},
		{
			name:     "CC turned off later",
			change:   func(m *mockNVML) { m.state.CcFeature = nvml.CC_SYSTEM_FEATURE_DISABLED },
			contains: []string{"confidential computing is off"},
		},
		{
			name:     "devtools mode",
			change:   func(m *mockNVML) { m.state.DevToolsMode = nvml.CC_SYSTEM_DEVTOOLS_MODE_ON },
			atOpen:   true,
			contains: []string{"developer tools mode"},
		},
		{
			name:     "SIM environment",
			change:   func(m *mockNVML) { m.state.Environment = nvml.CC_SYSTEM_ENVIRONMENT_SIM },
			atOpen:   true,
			contains: []string{"SIM environment (1)", "driver 550.90.07", "simulated TEE", "set CC mode to on, not devtools"},
		},
		{
			name:     "SIM environment later",
			change:   func(m *mockNVML) { m.state.Environment = nvml.CC_SYSTEM_ENVIRONMENT_SIM },
			contains: []string{"SIM environment (1)", "simulated TEE"},
		},
		{
			name: "SIM environment with unreadable driver version",
			change: func(m *mockNVML) {
				m.state.Environment = nvml.CC_SYSTEM_ENVIRONMENT_SIM
				m.SystemGetDriverVersionFunc = func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN }
			},
			atOpen:   true,
			contains: []string{"SIM environment (1)", "nvmlSystemGetDriverVersion failed"},
		},
		{
			name: "SIM environment with invalid driver version",
			change: func(m *mockNVML) {
				m.state.Environment = nvml.CC_SYSTEM_ENVIRONMENT_SIM
				m.SystemGetDriverVersionFunc = func() (string, nvml.Return) { return "r535", nvml.SUCCESS }
			},
			atOpen:   true,
			contains: []string{"SIM environment (1)", `returned "r535"`, "branch 550 or later"},
		},
		{
			name:     "unavailable environment",
			change:   func(m *mockNVML) { m.state.Environment = nvml.CC_SYSTEM_ENVIRONMENT_UNAVAILABLE },
			atOpen:   true,
			contains: []string{"environment 0", "neither PROD (2) nor SIM (1)"},
		},
		{
			name:     "no GPU",
			change:   func(m *mockNVML) { m.devices = nil },
			atOpen:   true,
			contains: []string{"enumerates 0 GPUs"},
		},
		{
			name:     "short report",
			change:   func(m *mockNVML) { m.reportSizeOverride = 20 },
			contains: []string{"GPU 0 (GPU-", "shorter than the 37-byte request"},
		},
		{
			name:     "report size beyond buffer",
			change:   func(m *mockNVML) { m.reportSizeOverride = 8193 },
			contains: []string{"GPU 0 (GPU-", "report size of 8193 bytes"},
		},
		{
			name:     "report for another nonce",
			change:   func(m *mockNVML) { m.reportNonceOverride = true },
			contains: []string{"not the requested"},
		},
		{
			name: "report not supported",
			change: func(m *mockNVML) {
				m.devices[1].GetConfComputeGpuAttestationReportFunc = func(*nvml.ConfComputeGpuAttestationReport) nvml.Return {
					return nvml.ERROR_NOT_SUPPORTED
				}
			},
			contains: []string{"GPU 1 (GPU-", "nvmlDeviceGetConfComputeGpuAttestationReport failed", "ERROR_NOT_SUPPORTED", "NVML return code 3"},
		},
		{
			name: "certificate failure",
			change: func(m *mockNVML) {
				m.devices[0].GetConfComputeGpuCertificateFunc = func() (nvml.ConfComputeGpuCertificate, nvml.Return) {
					return nvml.ConfComputeGpuCertificate{}, nvml.ERROR_NO_PERMISSION
				}
			},
			contains: []string{"GPU 0 (GPU-", "nvmlDeviceGetConfComputeGpuCertificate failed", "ERROR_NO_PERMISSION"},
		},
		{
			name: "pre-Hopper GPU",
			change: func(m *mockNVML) {
				m.devices[0].GetArchitectureFunc = func() (nvml.DeviceArchitecture, nvml.Return) { return nvml.DEVICE_ARCH_AMPERE, nvml.SUCCESS }
			},
			contains: []string{"GPU 0 (GPU-", "architecture 7"},
		},
		{
			name: "VBIOS mismatch",
			change: func(m *mockNVML) {
				m.devices[1].GetVbiosVersionFunc = func() (string, nvml.Return) { return "96.00.74.00.01", nvml.SUCCESS }
			},
			contains: []string{"GPU 1 (GPU-", "NVML reports VBIOS 96.00.74.00.01"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMockNVML(t, 2)
			var err error
			if tc.atOpen {
				tc.change(m)
				_, err = OpenNVMLLibrary(m)
			} else {
				a, openErr := OpenNVMLLibrary(m)
				if openErr != nil {
					t.Fatalf("OpenNVMLLibrary: %v", openErr)
				}
				tc.change(m)
				_, err = a.Attest(context.Background(), emulatorNonce(t))
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.contains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q, expected one containing %q", err, want)
				}
			}
			if m.shutdowns != m.inits && m.initReturn == nvml.SUCCESS {
				t.Errorf("nvmlShutdown called %d times after %d nvmlInit calls", m.shutdowns, m.inits)
			}
		})
	}
}

func TestNVMLAttesterShutdownFailure(t *testing.T) {
	m := newMockNVML(t, 1)
	a, err := OpenNVMLLibrary(m)
	if err != nil {
		t.Fatal(err)
	}
	m.ShutdownFunc = func() nvml.Return { return nvml.ERROR_UNKNOWN }
	if _, err := a.Attest(context.Background(), emulatorNonce(t)); err == nil || !strings.Contains(err.Error(), "nvmlShutdown failed") {
		t.Errorf("Attest error %v, expected one about nvmlShutdown", err)
	}
}

func TestNVMLAttesterContextCanceled(t *testing.T) {
	m := newMockNVML(t, 1)
	a, err := OpenNVMLLibrary(m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Attest(ctx, emulatorNonce(t)); err == nil {
		t.Error("Attest succeeded with a canceled context")
	}
}

func TestNVMLAttesterNonceTooLong(t *testing.T) {
	a, err := OpenNVMLLibrary(newMockNVML(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Attest(context.Background(), make([]byte, NonceSize+1)); err == nil {
		t.Error("Attest accepted 33 bytes of report data")
	}
}

func TestNVMLAttesterSetReady(t *testing.T) {
	m := newMockNVML(t, 2)
	a, err := OpenNVMLLibrary(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.setReady) != 0 {
		t.Errorf("OpenNVMLLibrary set the ready state %d times", len(m.setReady))
	}
	already, err := a.SetReady()
	if err != nil {
		t.Fatalf("SetReady: %v", err)
	}
	if already {
		t.Error("SetReady reports the state already set, but NVML reported the GPUs not ready")
	}
	if len(m.setReady) != 1 || m.setReady[0] != nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE {
		t.Errorf("nvmlSystemSetConfComputeGpusReadyState calls %v, expected one with %d", m.setReady, nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE)
	}
	if !a.Ready() {
		t.Error("Ready is false after SetReady")
	}
	if m.shutdowns != m.inits {
		t.Errorf("nvmlShutdown called %d times after %d nvmlInit calls", m.shutdowns, m.inits)
	}

	// NVML now reports the GPUs ready, so a second call does not set the
	// state again.
	already, err = a.SetReady()
	if err != nil {
		t.Fatalf("second SetReady: %v", err)
	}
	if !already {
		t.Error("second SetReady reports the state not already set")
	}
	if len(m.setReady) != 1 {
		t.Errorf("nvmlSystemSetConfComputeGpusReadyState called %d times, expected once", len(m.setReady))
	}
}

// readyStateFailure is an NVML failure that a ready-state setter must
// reject, with the words its error must contain.
type readyStateFailure struct {
	name     string
	change   func(m *mockNVML)
	contains []string
	// setCalls is how many times the ready state was to be set.
	setCalls int
}

// readyStateCallFailures returns the failing NVML calls that SetReady and
// SetNotReady both reject. setConsequence is what the error of a failed
// nvmlSystemSetConfComputeGpusReadyState says about the GPUs.
func readyStateCallFailures(setConsequence string) []readyStateFailure {
	return []readyStateFailure{
		{
			name:     "init failure",
			change:   func(m *mockNVML) { m.initReturn = nvml.ERROR_DRIVER_NOT_LOADED },
			contains: []string{"nvmlInit failed", "ERROR_DRIVER_NOT_LOADED", "NVML return code 9"},
		},
		{
			name:     "get ready state failure",
			change:   func(m *mockNVML) { m.readyReturn = nvml.ERROR_NOT_SUPPORTED },
			contains: []string{"nvmlSystemGetConfComputeGpusReadyState failed", "ERROR_NOT_SUPPORTED", "NVML return code 3"},
		},
		{
			name:     "set ready state failure",
			change:   func(m *mockNVML) { m.setReadyReturn = nvml.ERROR_NO_PERMISSION },
			contains: []string{"nvmlSystemSetConfComputeGpusReadyState failed", "ERROR_NO_PERMISSION", "NVML return code 4", setConsequence},
			setCalls: 1,
		},
	}
}

func TestNVMLAttesterSetReadyRejects(t *testing.T) {
	tests := append(readyStateCallFailures("do not accept work"), []readyStateFailure{
		{
			name:     "CC turned off",
			change:   func(m *mockNVML) { m.state.CcFeature = nvml.CC_SYSTEM_FEATURE_DISABLED },
			contains: []string{"confidential computing is off"},
		},
		{
			name:     "devtools mode",
			change:   func(m *mockNVML) { m.state.DevToolsMode = nvml.CC_SYSTEM_DEVTOOLS_MODE_ON },
			contains: []string{"developer tools mode"},
		},
		{
			name:     "SIM environment",
			change:   func(m *mockNVML) { m.state.Environment = nvml.CC_SYSTEM_ENVIRONMENT_SIM },
			contains: []string{"SIM environment (1)", "simulated TEE"},
		},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMockNVML(t, 1)
			a, err := OpenNVMLLibrary(m)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(m)
			already, err := a.SetReady()
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.contains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q, expected one containing %q", err, want)
				}
			}
			if already {
				t.Error("SetReady reports the state already set")
			}
			if a.Ready() {
				t.Error("Ready is true after a failed SetReady")
			}
			if len(m.setReady) != tc.setCalls {
				t.Errorf("nvmlSystemSetConfComputeGpusReadyState called %d times, expected %d", len(m.setReady), tc.setCalls)
			}
		})
	}
}

func TestNVMLAttesterSetNotReady(t *testing.T) {
	m := newMockNVML(t, 2)
	m.ready = nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE
	a, err := OpenNVMLLibrary(m)
	if err != nil {
		t.Fatal(err)
	}
	wasReady, err := a.SetNotReady()
	if err != nil {
		t.Fatalf("SetNotReady: %v", err)
	}
	if !wasReady {
		t.Error("SetNotReady reports the GPUs not ready before, but NVML reported them ready")
	}
	if len(m.setReady) != 1 || m.setReady[0] != nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE {
		t.Errorf("nvmlSystemSetConfComputeGpusReadyState calls %v, expected one with %d", m.setReady, nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE)
	}
	if a.Ready() {
		t.Error("Ready is true after SetNotReady")
	}
	if m.shutdowns != m.inits {
		t.Errorf("nvmlShutdown called %d times after %d nvmlInit calls", m.shutdowns, m.inits)
	}

	// NVML now reports the GPUs not ready, so a second call leaves the
	// state alone.
	wasReady, err = a.SetNotReady()
	if err != nil {
		t.Fatalf("second SetNotReady: %v", err)
	}
	if wasReady {
		t.Error("second SetNotReady reports the GPUs ready before")
	}
	if len(m.setReady) != 1 {
		t.Errorf("nvmlSystemSetConfComputeGpusReadyState called %d times, expected once", len(m.setReady))
	}
}

// SetNotReady clears the state also in developer tools mode or with
// confidential computing turned off, which SetReady and Attest reject.
func TestNVMLAttesterSetNotReadyAnyState(t *testing.T) {
	m := newMockNVML(t, 1)
	m.ready = nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE
	a, err := OpenNVMLLibrary(m)
	if err != nil {
		t.Fatal(err)
	}
	m.state.DevToolsMode = nvml.CC_SYSTEM_DEVTOOLS_MODE_ON
	m.state.CcFeature = nvml.CC_SYSTEM_FEATURE_DISABLED
	if _, err := a.SetNotReady(); err != nil {
		t.Fatalf("SetNotReady: %v", err)
	}
	if m.ready != nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE {
		t.Errorf("NVML ready state %d after SetNotReady, expected %d", m.ready, nvml.CC_ACCEPTING_CLIENT_REQUESTS_FALSE)
	}
}

func TestNVMLAttesterSetNotReadyRejects(t *testing.T) {
	tests := readyStateCallFailures("still accept work")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMockNVML(t, 1)
			m.ready = nvml.CC_ACCEPTING_CLIENT_REQUESTS_TRUE
			a, err := OpenNVMLLibrary(m)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(m)
			wasReady, err := a.SetNotReady()
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.contains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q, expected one containing %q", err, want)
				}
			}
			// The mock reports the GPUs ready, so SetNotReady saw them
			// ready exactly when it went on to set the state.
			if expected := tc.setCalls > 0; wasReady != expected {
				t.Errorf("SetNotReady reports ready before %v, expected %v", wasReady, expected)
			}
			if !a.Ready() {
				t.Error("Ready is false after a failed SetNotReady")
			}
			if len(m.setReady) != tc.setCalls {
				t.Errorf("nvmlSystemSetConfComputeGpusReadyState called %d times, expected %d", len(m.setReady), tc.setCalls)
			}
		})
	}
}

// Drivers of branches 535 and 545 report the SIM environment for every GPU
// in CC mode, so the attester accepts SIM from them.
func TestNVMLAttesterSIMBeforeDriver550(t *testing.T) {
	for _, driver := range []string{"535.288.01", "545.29.06"} {
		t.Run(driver, func(t *testing.T) {
			m := newMockNVML(t, 1)
			m.state.Environment = nvml.CC_SYSTEM_ENVIRONMENT_SIM
			m.SystemGetDriverVersionFunc = func() (string, nvml.Return) { return driver, nvml.SUCCESS }
			a, err := OpenNVMLLibrary(m)
			if err != nil {
				t.Fatalf("OpenNVMLLibrary: %v", err)
			}
			if _, err := a.SetReady(); err != nil {
				t.Errorf("SetReady: %v", err)
			}
		})
	}
}
