package nvgpu

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// emulatedVBIOSText is the emulated VBIOS version as NVML prints it.
const emulatedVBIOSText = "96.00.9F.00.01"

// collectedFromEmulator returns what NVML would return for e's GPUs and
// nonce: the emulator's reports and PEM chains, with the versions that the
// reports' opaque data names.
func collectedFromEmulator(t testing.TB, e *Emulator, nonce [NonceSize]byte) []collectedGPU {
	t.Helper()
	gpus := make([]collectedGPU, len(e.gpus))
	for i, g := range e.gpus {
		report, err := e.report(g, nonce)
		if err != nil {
			t.Fatal(err)
		}
		gpus[i] = collectedGPU{
			Index: i, UUID: g.uuid, Arch: emulatedArch,
			DriverVersion: emulatedDriverVersion, VBIOSVersion: emulatedVBIOSText,
			Report: report, Chain: e.chainPEM(g),
		}
	}
	return gpus
}

func arrayNonce(t testing.TB) [NonceSize]byte {
	t.Helper()
	var nonce [NonceSize]byte
	copy(nonce[:], emulatorNonce(t))
	return nonce
}

func TestHardwareEvidenceVerifies(t *testing.T) {
	e := newEmulator(t, 2)
	nonce := arrayNonce(t)
	ev, err := hardwareEvidence(collectedFromEmulator(t, e, nonce), nonce)
	if err != nil {
		t.Fatalf("hardwareEvidence: %v", err)
	}
	if ev.Format != string(attest.TEENVGPU) {
		t.Errorf("format %q, expected %s", ev.Format, attest.TEENVGPU)
	}
	if !(&Verifier{}).Detect(ev.Data) {
		t.Error("the verifier does not detect the evidence")
	}
	claims, err := verifyEvidence(t, ev, emulatorOptions(t, e, nonce[:]))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, name := range []string{"spdm-signature", "certificate-chain", "fwid", rimCheck, "nonce"} {
		checkResult(t, claims, name, attest.CheckPassed)
	}
}

// The evidence has the members and encodings of the emulator's.
func TestHardwareEvidenceSameForm(t *testing.T) {
	e := newEmulator(t, 1)
	nonce := arrayNonce(t)
	hw, err := hardwareEvidence(collectedFromEmulator(t, e, nonce), nonce)
	if err != nil {
		t.Fatal(err)
	}
	emulated := attestEmulator(t, e, nonce[:])

	var hwEntries, emulatedEntries []map[string]string
	if err := json.Unmarshal(hw.Data, &hwEntries); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(emulated.Data, &emulatedEntries); err != nil {
		t.Fatal(err)
	}
	if len(hwEntries) != 1 || len(emulatedEntries) != 1 {
		t.Fatalf("%d and %d entries, expected one each", len(hwEntries), len(emulatedEntries))
	}
	for member := range emulatedEntries[0] {
		if _, ok := hwEntries[0][member]; !ok {
			t.Errorf("member %s of the emulator's entry is missing", member)
		}
	}
	for member := range hwEntries[0] {
		if _, ok := emulatedEntries[0][member]; !ok {
			t.Errorf("member %s is not in the emulator's entry", member)
		}
	}
	// The responder nonce and signature differ between two reports, but
	// the chain and identity do not.
	for _, member := range []string{"certChainBase64Encoded", "arch", "uuid"} {
		if hwEntries[0][member] != emulatedEntries[0][member] {
			t.Errorf("%s %q, the emulator writes %q", member, hwEntries[0][member], emulatedEntries[0][member])
		}
	}
}

func TestHardwareEvidenceRejects(t *testing.T) {
	e := newEmulator(t, 1)
	nonce := arrayNonce(t)
	tests := []struct {
		name     string
		change   func(g *collectedGPU)
		contains string
	}{
		{"short report", func(g *collectedGPU) { g.Report = g.Report[:20] }, "shorter than the 37-byte request"},
		{"truncated response", func(g *collectedGPU) { g.Report = g.Report[:len(g.Report)-10] }, "truncated"},
		{"other nonce", func(g *collectedGPU) { g.Report[4] ^= 1 }, "not the requested"},
		{"other driver", func(g *collectedGPU) { g.DriverVersion = "550.90.08" }, "NVML reports driver 550.90.08"},
		{"other VBIOS", func(g *collectedGPU) { g.VBIOSVersion = "96.00.9F.00.02" }, "NVML reports VBIOS 96.00.9F.00.02"},
		{"empty chain", func(g *collectedGPU) { g.Chain = nil }, "empty attestation certificate chain"},
		{"invalid chain", func(g *collectedGPU) { g.Chain = []byte("not a certificate") }, "chain from nvmlDeviceGetConfComputeGpuCertificate is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gpus := collectedFromEmulator(t, e, nonce)
			tc.change(&gpus[0])
			_, err := hardwareEvidence(gpus, nonce)
			if err == nil {
				t.Fatal("hardwareEvidence accepted the GPU")
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q, expected one containing %q", err, tc.contains)
			}
			if !strings.Contains(err.Error(), gpus[0].UUID) {
				t.Errorf("error %q does not name the GPU's UUID %s", err, gpus[0].UUID)
			}
		})
	}
}

func TestHardwareEvidenceVersionCase(t *testing.T) {
	e := newEmulator(t, 1)
	nonce := arrayNonce(t)
	gpus := collectedFromEmulator(t, e, nonce)
	gpus[0].VBIOSVersion = strings.ToLower(emulatedVBIOSText)
	if _, err := hardwareEvidence(gpus, nonce); err != nil {
		t.Errorf("hardwareEvidence rejected a lowercase VBIOS version: %v", err)
	}
}

func TestHardwareEvidenceGPUCount(t *testing.T) {
	var nonce [NonceSize]byte
	if _, err := hardwareEvidence(nil, nonce); err == nil {
		t.Error("hardwareEvidence accepted no GPUs")
	}
	if _, err := hardwareEvidence(make([]collectedGPU, maxGPUs+1), nonce); err == nil {
		t.Errorf("hardwareEvidence accepted %d GPUs", maxGPUs+1)
	}
}

func TestReportDataNonce(t *testing.T) {
	nonce, err := reportDataNonce([]byte{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if nonce[0] != 1 || nonce[1] != 2 || nonce[NonceSize-1] != 0 {
		t.Errorf("nonce %x, expected 0102 zero-padded", nonce)
	}
	if _, err := reportDataNonce(make([]byte, NonceSize+1)); err == nil {
		t.Error("reportDataNonce accepted 33 bytes")
	}
}
