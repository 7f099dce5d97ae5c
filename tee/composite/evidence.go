package composite

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// maxGPUs bounds the GPU list, as the nvidia-gpu verifier bounds its
// multi-GPU arrays.
const maxGPUs = 64

// BindingSize is the length of the binding value: the SPDM nonce size.
const BindingSize = 32

// Evidence is decoded composite evidence.
type Evidence struct {
	// CPU is the CPU report or quote, with its format name when the
	// evidence names one.
	CPU attest.Evidence
	// GPUs holds one nvidia-gpu evidence document per GPU: the hexadecimal
	// report text, or a one-element JSON array holding the GPU's entry.
	GPUs [][]byte
}

// document is the JSON form of composite evidence.
type document struct {
	CPU  *cpuPart          `json:"cpu"`
	GPUs []json.RawMessage `json:"gpus"`
}

// cpuPart is the "cpu" object.
type cpuPart struct {
	Format   string `json:"format,omitempty"`
	Evidence string `json:"evidence"`
	Aux      string `json:"aux,omitempty"`
}

// Parse decodes composite evidence. It checks the JSON shape and the
// base64 of the CPU part; each part's content is left to its verifier.
func Parse(data []byte) (*Evidence, error) {
	text := bytes.TrimSpace(data)
	if len(text) == 0 || text[0] != '{' {
		return nil, attest.Malformed("evidence", "composite evidence must be a JSON object with \"cpu\" and \"gpus\"", nil)
	}
	var doc document
	if err := json.Unmarshal(text, &doc); err != nil {
		return nil, attest.Malformed("evidence", "invalid composite evidence JSON", err)
	}
	if doc.CPU == nil || doc.CPU.Evidence == "" {
		return nil, attest.Malformed("cpu.evidence", "missing: composite evidence needs the CPU report or quote in base64", nil)
	}
	if len(doc.GPUs) == 0 || len(doc.GPUs) > maxGPUs {
		return nil, attest.Malformed("gpus", fmt.Sprintf("%d GPU entries, outside 1..%d", len(doc.GPUs), maxGPUs), nil).
			WithFix("list the evidence of each GPU under \"gpus\"; verify a CPU report alone with its own format")
	}

	ev := &Evidence{CPU: attest.Evidence{Format: doc.CPU.Format}}
	var err error
	if ev.CPU.Data, err = base64.StdEncoding.DecodeString(doc.CPU.Evidence); err != nil {
		return nil, attest.Malformed("cpu.evidence", "the CPU evidence is not standard base64", err)
	}
	if doc.CPU.Aux != "" {
		if ev.CPU.Aux, err = base64.StdEncoding.DecodeString(doc.CPU.Aux); err != nil {
			return nil, attest.Malformed("cpu.aux", "the CPU auxiliary data is not standard base64", err)
		}
	}
	for i, raw := range doc.GPUs {
		gpu, err := gpuDocument(raw)
		if err != nil {
			return nil, attest.Malformed(fmt.Sprintf("gpus[%d]", i), err.Error(), nil).
				WithFix("give each GPU as its hexadecimal report text or as an object with attestationReportHexStr and certChainBase64Encoded")
		}
		ev.GPUs = append(ev.GPUs, gpu)
	}
	return ev, nil
}

// gpuDocument turns one "gpus" element into evidence for the nvidia-gpu
// verifier: a string becomes the report text, an object a one-element
// array. A string that holds JSON is rejected, because the nvidia-gpu
// verifier would read it as a list of GPUs, and merge would report only
// the first one's FWID.
func gpuDocument(raw json.RawMessage) ([]byte, error) {
	switch raw[0] {
	case '"':
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, err
		}
		if text == "" {
			return nil, fmt.Errorf("empty GPU report text")
		}
		if err := checkReportText([]byte(text)); err != nil {
			return nil, err
		}
		return []byte(text), nil
	case '{':
		out := make([]byte, 0, len(raw)+2)
		out = append(out, '[')
		out = append(out, raw...)
		return append(out, ']'), nil
	}
	return nil, fmt.Errorf("a GPU entry is a string or an object, not %.20s", raw)
}

// Marshal encodes ev as composite evidence JSON. Each GPU document must be
// the report text or a one-element JSON array, as Parse returns them.
func Marshal(ev *Evidence) ([]byte, error) {
	doc := document{CPU: &cpuPart{
		Format:   ev.CPU.Format,
		Evidence: base64.StdEncoding.EncodeToString(ev.CPU.Data),
	}}
	if len(ev.CPU.Aux) > 0 {
		doc.CPU.Aux = base64.StdEncoding.EncodeToString(ev.CPU.Aux)
	}
	for i, gpu := range ev.GPUs {
		raw, err := gpuEntry(bytes.TrimSpace(gpu))
		if err != nil {
			return nil, fmt.Errorf("composite: GPU %d: %w", i, err)
		}
		doc.GPUs = append(doc.GPUs, raw)
	}
	return json.MarshalIndent(doc, "", "  ")
}

// gpuEntry is the inverse of gpuDocument.
func gpuEntry(gpu []byte) (json.RawMessage, error) {
	if len(gpu) == 0 {
		return nil, fmt.Errorf("empty GPU evidence")
	}
	if gpu[0] != '[' {
		if err := checkReportText(gpu); err != nil {
			return nil, err
		}
		return json.Marshal(string(gpu))
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(gpu, &entries); err != nil {
		return nil, err
	}
	if len(entries) != 1 {
		return nil, fmt.Errorf("%d entries in a GPU array, want 1: list each GPU separately", len(entries))
	}
	return entries[0], nil
}

// checkReportText rejects GPU report text that is a JSON array or object,
// which may list several GPUs in one element of "gpus".
func checkReportText(text []byte) error {
	if t := bytes.TrimSpace(text); len(t) > 0 && (t[0] == '[' || t[0] == '{') {
		return fmt.Errorf("the GPU string is JSON text, not hexadecimal report text, and may list several GPUs; give one GPU per element of \"gpus\", each as its hexadecimal report text or its entry object")
	}
	return nil
}

// detect reports whether data is a JSON object with a "cpu" object that
// carries evidence and a "gpus" array, without decoding the parts.
func detect(data []byte) bool {
	text := bytes.TrimSpace(data)
	if len(text) == 0 || text[0] != '{' {
		return false
	}
	var doc document
	if err := json.Unmarshal(text, &doc); err != nil {
		return false
	}
	return doc.CPU != nil && doc.CPU.Evidence != "" && doc.GPUs != nil
}

// Binding returns the value every GPU nonce must equal: the first
// BindingSize bytes of the CPU report data. It fails when the CPU evidence
// carries less report data.
func Binding(reportData []byte) ([]byte, error) {
	if len(reportData) < BindingSize {
		return nil, attest.Errorf(attest.ErrBinding, "report data",
			"the CPU evidence carries %d bytes of report data, fewer than the %d that bind the GPU nonce", len(reportData), BindingSize).
			WithFix("use a CPU TEE with 64-byte report data (SEV-SNP, TDX, SGX) and place the GPU nonce in its first 32 bytes")
	}
	return reportData[:BindingSize], nil
}
