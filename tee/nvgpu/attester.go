package nvgpu

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloister-dev/cloister/attest"
)

// ErrNVMLNotBuilt is the error of OpenNVML and NVMLAttester in a binary
// built without the nvml build tag.
var ErrNVMLNotBuilt = errors.New("NVIDIA GPU attestation reads the GPUs through NVML, but this binary was built without NVML support; rebuild with -tags nvml (go build -tags nvml ./cmd/cloister), which needs cgo and a C compiler")

// nvmlStatus is the confidential-computing state that NVML reports for the
// whole machine.
type nvmlStatus struct {
	// GPUs is the number of GPUs that NVML enumerates.
	GPUs int
	// Ready is true when the GPUs accept work, which a verifier sets after
	// it accepted their evidence (nvmlSystemSetConfComputeGpusReadyState).
	Ready bool
}

// collectedGPU is the data that NVML returned for one GPU, before it
// becomes an evidence entry.
type collectedGPU struct {
	Index int
	UUID  string
	Arch  string
	// DriverVersion and VBIOSVersion are NVML's text, such as 550.90.07
	// and 96.00.9F.00.01.
	DriverVersion string
	VBIOSVersion  string
	// Report is the attestation report: the GET_MEASUREMENTS request and
	// the signed MEASUREMENTS response.
	Report []byte
	// Chain is the attestation certificate chain, leaf first, in PEM as
	// NVML returns it (DER is accepted too).
	Chain []byte
}

// name returns the GPU's index and UUID for error messages.
func (g *collectedGPU) name() string {
	if g.UUID == "" {
		return fmt.Sprintf("GPU %d", g.Index)
	}
	return fmt.Sprintf("GPU %d (%s)", g.Index, g.UUID)
}

// entry checks what NVML returned for one GPU against the nonce and
// against NVML's driver and VBIOS versions, and returns its evidence entry
// in the form that the emulator writes and ParseEvidence reads. The report
// must parse, carry the requested nonce, and name in its signed opaque
// data the driver and VBIOS versions that NVML reports, which the verifier
// uses to select the RIMs. The chain is re-encoded as PEM.
func (g *collectedGPU) entry(nonce [NonceSize]byte) (gpuEntry, error) {
	report, err := ParseReport(g.Report)
	if err != nil {
		return gpuEntry{}, fmt.Errorf("%s: the attestation report from nvmlDeviceGetConfComputeGpuAttestationReport is invalid: %w", g.name(), err)
	}
	if !bytes.Equal(report.Request.Nonce[:], nonce[:]) {
		return gpuEntry{}, fmt.Errorf("%s: the attestation report carries nonce %x, not the requested %x; collect it again", g.name(), report.Request.Nonce, nonce)
	}
	if err := g.checkVersions(report); err != nil {
		return gpuEntry{}, err
	}

	if len(g.Chain) == 0 {
		return gpuEntry{}, fmt.Errorf("%s: nvmlDeviceGetConfComputeGpuCertificate returned an empty attestation certificate chain", g.name())
	}
	chain, err := parseChain(g.Chain, "attestation certificate chain")
	if err != nil {
		return gpuEntry{}, fmt.Errorf("%s: the attestation certificate chain from nvmlDeviceGetConfComputeGpuCertificate is invalid: %w", g.name(), err)
	}
	var chainPEM []byte
	for _, c := range chain {
		chainPEM = append(chainPEM, pemCert(c)...)
	}

	return gpuEntry{
		ReportHex:   hex.EncodeToString(g.Report),
		ChainBase64: base64.StdEncoding.EncodeToString(chainPEM),
		Arch:        g.Arch,
		UUID:        g.UUID,
	}, nil
}

// checkVersions compares the driver and VBIOS versions in the report's
// opaque data with NVML's, as NVIDIA's local GPU verifier does, ignoring
// case. A report without either version is rejected, because the verifier
// cannot then select the RIMs.
func (g *collectedGPU) checkVersions(report *Report) error {
	driver, vbios := gpuVersions(report)
	switch {
	case driver == "":
		return fmt.Errorf("%s: the attestation report's opaque data has no driver version (type %d)", g.name(), opaqueDriverVersion)
	case vbios == "":
		return fmt.Errorf("%s: the attestation report's opaque data has no VBIOS version (type %d)", g.name(), opaqueVBIOSVersion)
	case !strings.EqualFold(driver, strings.TrimSpace(g.DriverVersion)):
		return fmt.Errorf("%s: the attestation report names driver %s, but NVML reports driver %s; collect the evidence again after the driver update has finished", g.name(), driver, g.DriverVersion)
	case !strings.EqualFold(vbios, strings.TrimSpace(g.VBIOSVersion)):
		return fmt.Errorf("%s: the attestation report names VBIOS %s, but NVML reports VBIOS %s", g.name(), vbios, g.VBIOSVersion)
	}
	return nil
}

// reportDataNonce returns reportData as an SPDM nonce, zero-padded when
// shorter. Emulator.Attest and NVMLAttester.Attest both take their nonce
// this way.
func reportDataNonce(reportData []byte) ([NonceSize]byte, error) {
	var nonce [NonceSize]byte
	if len(reportData) > NonceSize {
		return nonce, fmt.Errorf("report data is %d bytes, but the SPDM nonce has %d; pass at most %d bytes", len(reportData), NonceSize, NonceSize)
	}
	copy(nonce[:], reportData)
	return nonce, nil
}

// hardwareEvidence returns the evidence of the collected GPUs: a JSON array
// with one entry per GPU, in the form Emulator.Attest writes.
func hardwareEvidence(gpus []collectedGPU, nonce [NonceSize]byte) (*attest.Evidence, error) {
	if len(gpus) == 0 || len(gpus) > maxGPUs {
		return nil, fmt.Errorf("nvgpu: NVML enumerates %d GPUs, but Cloister attests 1 to %d", len(gpus), maxGPUs)
	}
	entries := make([]gpuEntry, len(gpus))
	for i := range gpus {
		e, err := gpus[i].entry(nonce)
		if err != nil {
			return nil, fmt.Errorf("nvgpu: %w", err)
		}
		entries[i] = e
	}
	return entriesEvidence(entries)
}

// entriesEvidence returns the nvidia-gpu evidence whose data is entries as
// a JSON array.
func entriesEvidence(entries []gpuEntry) (*attest.Evidence, error) {
	data, err := json.Marshal(entries)
	if err != nil {
		return nil, err
	}
	return &attest.Evidence{Format: string(attest.TEENVGPU), Data: data}, nil
}
