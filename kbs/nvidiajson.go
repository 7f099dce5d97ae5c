package kbs

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
)

// The NVIDIA attester of Trustee's guest components (attestation-agent,
// attester/src/nvidia) sends the evidence of the guest's GPUs and
// NVSwitches as one JSON object:
//
//	{"device_evidence_list": [{"arch", "uuid", "evidence", "certificate"}, ...]}
//
// Per device, arch is the architecture: "HOPPER", "BLACKWELL", or "LS10"
// for an NVSwitch, written "Hopper" and "Blackwell" before June 2026.
// uuid is the GPU UUID, or "unknown" when NVIDIA's attestation SDK does
// not report it. evidence is the SPDM GET_MEASUREMENTS request and
// MEASUREMENTS response in standard base64, in hexadecimal before October
// 2025. certificate is the standard base64 of the device's PEM certificate
// chain, leaf first. Every device reports for one SPDM nonce, the first 32
// bytes of the device runtime-data digest.
//
// This decoder follows Trustee's nvidia verifier in the member names, the
// arch spellings, the optional uuid and the two report encodings. It also
// rejects NVSwitch entries, which the nvidia-gpu verifier cannot check,
// and repeated members.

// nvidiaDeviceListMember is the member that identifies the NVIDIA
// attester's JSON.
const nvidiaDeviceListMember = "device_evidence_list"

// maxNVIDIADevices bounds device_evidence_list. The largest configuration
// that the attester reports is a protected PCIe guest on an HGX board with
// 8 GPUs and 4 NVSwitches, which Trustee's verifier counts as 12 devices.
const maxNVIDIADevices = 12

// nvidiaSwitchArchitecture is the arch of an NVSwitch entry.
const nvidiaSwitchArchitecture = "LS10"

// nvidiaGPUArchitectures maps each GPU arch spelling that Trustee's nvidia
// verifier accepts to the upper-case name that NVIDIA's tools write, which
// the claims carry.
//
// NOTE: the nvidia-gpu verifier has been checked with Hopper reports only.
// A Blackwell report passes this decoder and is then verified or rejected
// by that verifier's SPDM 1.1 and certificate checks.
var nvidiaGPUArchitectures = map[string]string{
	"Hopper":    "HOPPER",
	"HOPPER":    "HOPPER",
	"Blackwell": "BLACKWELL",
	"BLACKWELL": "BLACKWELL",
}

// nvgpuEntry is one GPU of the JSON array that the nvidia-gpu verifier
// reads, with the member names of NVIDIA's attestation SDK.
type nvgpuEntry struct {
	ReportHex   string `json:"attestationReportHexStr"`
	ChainBase64 string `json:"certChainBase64Encoded"`
	Arch        string `json:"arch"`
	UUID        string `json:"uuid,omitempty"`
}

// decodeNVIDIADeviceJSON converts the NVIDIA attester's JSON in obj, a
// valid JSON object with a device_evidence_list member, into nvidia-gpu
// evidence: a JSON array with one nvgpuEntry per device, in list order.
// Member names are matched exactly, and a repeated member is rejected, as
// Trustee's verifier rejects it.
func decodeNVIDIADeviceJSON(obj *jsonvalue.Object) (attest.Evidence, error) {
	if err := jsonvalue.WalkMembers(obj.Text(), nil); err != nil {
		return attest.Evidence{}, attest.Malformed("nvidia evidence", "invalid NVIDIA attester JSON", err).
			WithFix("send each member once, as the NVIDIA attester writes it")
	}
	text, _ := obj.Get(nvidiaDeviceListMember)
	var list []json.RawMessage
	if err := json.Unmarshal(text, &list); err != nil || list == nil {
		return attest.Evidence{}, attest.Malformed(nvidiaDeviceListMember, fmt.Sprintf("%.40q is not a JSON array", text), err).
			WithFix("send an array with one object per device")
	}
	if len(list) == 0 {
		return attest.Evidence{}, attest.Malformed(nvidiaDeviceListMember, "the list is empty, so the guest's NVIDIA attester found no device", nil).
			WithFix("put the GPUs into confidential-computing mode and check that the guest's NVIDIA driver reports them, or leave nvidia out of additional_evidence")
	}
	if len(list) > maxNVIDIADevices {
		return attest.Evidence{}, attest.Malformed(nvidiaDeviceListMember, fmt.Sprintf("%d devices, more than the %d of the largest NVIDIA board", len(list), maxNVIDIADevices), nil).
			WithFix("send the evidence of one guest's devices only")
	}

	entries := make([]nvgpuEntry, len(list))
	for i, text := range list {
		entry, err := decodeNVIDIADevice(fmt.Sprintf("%s[%d]", nvidiaDeviceListMember, i), text)
		if err != nil {
			return attest.Evidence{}, err
		}
		entries[i] = entry
	}
	data, err := json.Marshal(entries)
	if err != nil {
		return attest.Evidence{}, err
	}
	return attest.Evidence{Format: string(attest.TEENVGPU), Data: data}, nil
}

// decodeNVIDIADevice converts one element of device_evidence_list, named
// field in errors.
func decodeNVIDIADevice(field string, text json.RawMessage) (nvgpuEntry, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(text, &members); err != nil || members == nil {
		return nvgpuEntry{}, attest.Malformed(field, "not a JSON object", err).
			WithFix("send each device as an object with arch, uuid, evidence and certificate")
	}
	arch, err := decodeNVIDIAArch(field+".arch", members)
	if err != nil {
		return nvgpuEntry{}, err
	}
	uuid, _, err := stringMember(field+".uuid", members, "uuid")
	if err != nil {
		return nvgpuEntry{}, err
	}
	report, err := decodeNVIDIAReport(field+".evidence", members)
	if err != nil {
		return nvgpuEntry{}, err
	}
	chain, err := decodeNVIDIAChain(field+".certificate", members)
	if err != nil {
		return nvgpuEntry{}, err
	}
	return nvgpuEntry{
		ReportHex:   hex.EncodeToString(report),
		ChainBase64: base64.StdEncoding.EncodeToString(chain),
		Arch:        arch,
		UUID:        uuid,
	}, nil
}

// stringMember returns the string value of the member name, and whether
// it is present. A present value that is not a string, null included, is
// an error, as Trustee's verifier reads these members as strings.
func stringMember(field string, members map[string]json.RawMessage, name string) (string, bool, error) {
	text, ok := members[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if bytes.Equal(text, []byte("null")) || json.Unmarshal(text, &s) != nil {
		return "", true, attest.Malformed(field, fmt.Sprintf("%.40q is not a JSON string", text), nil).
			WithFix("send " + name + " as a string, as the NVIDIA attester does")
	}
	return s, true, nil
}

// decodeNVIDIAArch returns the upper-case name of a GPU arch. An NVSwitch
// is rejected, because the nvidia-gpu verifier checks GPU reports only.
func decodeNVIDIAArch(field string, members map[string]json.RawMessage) (string, error) {
	arch, ok, err := stringMember(field, members, "arch")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", attest.Malformed(field, "missing", nil).
			WithFix("send the device architecture, such as HOPPER, as the NVIDIA attester does")
	}
	if arch == nvidiaSwitchArchitecture {
		return "", attest.Errorf(attest.ErrUnsupported, field, "%s is an NVSwitch, and Cloister verifies NVIDIA GPUs only", arch).
			WithFix("attest a guest whose NVIDIA attester reports NVSwitches (protected PCIe mode) with a verifier of NVSwitch evidence, such as Trustee's with NVIDIA's NRAS")
	}
	name, ok := nvidiaGPUArchitectures[arch]
	if !ok {
		return "", attest.Errorf(attest.ErrUnsupported, field, "unknown GPU architecture %.40q", arch).
			WithFix("send HOPPER or BLACKWELL (or Hopper or Blackwell), as Trustee's guest components name the GPUs they attest")
	}
	return name, nil
}

// decodeNVIDIAReport decodes the evidence member as Trustee's verifier
// does: as hexadecimal text when it is that, as standard base64 otherwise.
func decodeNVIDIAReport(field string, members map[string]json.RawMessage) ([]byte, error) {
	text, _, err := stringMember(field, members, "evidence")
	if err != nil {
		return nil, err
	}
	if text == "" {
		return nil, attest.Malformed(field, "missing or empty", nil).
			WithFix("send the GPU's SPDM GET_MEASUREMENTS request and MEASUREMENTS response in standard base64")
	}
	if report, err := hex.DecodeString(text); err == nil {
		return report, nil
	}
	report, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		return nil, attest.Malformed(field, "neither standard base64 nor hexadecimal", err).
			WithFix("send the GPU's SPDM GET_MEASUREMENTS request and MEASUREMENTS response in standard base64")
	}
	return report, nil
}

// decodeNVIDIAChain decodes the certificate member into PEM certificates,
// leaf first, and checks that each parses. Trustee's verifier reads the
// chain as PEM only. Bytes around the PEM blocks, such as the zero padding
// of NVML's fixed-size buffer, are dropped.
func decodeNVIDIAChain(field string, members map[string]json.RawMessage) ([]byte, error) {
	fix := "send the standard base64 of the GPU's PEM certificate chain, leaf first, as NVML returns it"
	text, _, err := stringMember(field, members, "certificate")
	if err != nil {
		return nil, err
	}
	if text == "" {
		return nil, attest.Malformed(field, "missing or empty", nil).WithFix(fix)
	}
	data, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		return nil, attest.Malformed(field, "not standard base64", err).WithFix(fix)
	}
	var out []byte
	for n := 0; ; n++ {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest
		if block.Type != "CERTIFICATE" {
			return nil, attest.Malformed(field, fmt.Sprintf("PEM block %d is %.40q, not CERTIFICATE", n, block.Type), nil).WithFix(fix)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, attest.Malformed(field, fmt.Sprintf("certificate %d of the chain is invalid", n), err).WithFix(fix)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})...)
	}
	if len(out) == 0 {
		return nil, attest.Malformed(field, "no PEM certificate in the decoded chain", nil).WithFix(fix)
	}
	return out, nil
}
