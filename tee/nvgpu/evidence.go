package nvgpu

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// maxGPUs bounds a multi-GPU evidence array; an HGX board has eight GPUs.
const maxGPUs = 64

// GPUEvidence is the evidence of one GPU: its report and, when the evidence
// carries it, its device certificate chain, leaf first.
type GPUEvidence struct {
	Report []byte
	Chain  []*x509.Certificate
	// Arch and UUID are the architecture and GPU UUID when the evidence
	// names them; they are not signed.
	Arch string
	UUID string
}

// gpuEntry is one element of a multi-GPU JSON array. The NVIDIA attestation
// SDK writes attestationReportHexStr and certChainBase64Encoded; Trustee's
// attester writes evidence and certificate, with arch and uuid.
type gpuEntry struct {
	ReportHex   string `json:"attestationReportHexStr"`
	ChainBase64 string `json:"certChainBase64Encoded"`
	Evidence    string `json:"evidence"`
	Certificate string `json:"certificate"`
	Arch        string `json:"arch"`
	UUID        string `json:"uuid"`
}

// ParseEvidence decodes the two evidence forms: the hexadecimal text of one
// GPU's report, or a JSON array with one entry per GPU (also accepted inside
// an object under device_evidence_list, evidence_list, or evidences, as
// NVIDIA's nvattest collect-evidence writes it).
func ParseEvidence(data []byte) ([]GPUEvidence, error) {
	text := bytes.TrimSpace(data)
	if len(text) == 0 {
		return nil, attest.Malformed("evidence", "empty input", nil)
	}
	if text[0] == '[' || text[0] == '{' {
		return parseJSON(text)
	}
	report, err := decodeHex(text, "evidence")
	if err != nil {
		return nil, err
	}
	return []GPUEvidence{{Report: report}}, nil
}

func decodeHex(text []byte, field string) ([]byte, error) {
	out := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(out, text); err != nil {
		return nil, attest.Malformed(field, "the report is not hexadecimal text", err)
	}
	return out, nil
}

func parseJSON(text []byte) ([]GPUEvidence, error) {
	var entries []gpuEntry
	if text[0] == '{' {
		var wrapper struct {
			DeviceEvidenceList []gpuEntry `json:"device_evidence_list"`
			EvidenceList       []gpuEntry `json:"evidence_list"`
			Evidences          []gpuEntry `json:"evidences"`
		}
		if err := json.Unmarshal(text, &wrapper); err != nil {
			return nil, attest.Malformed("evidence", "invalid GPU evidence JSON", err)
		}
		entries = append(append(wrapper.DeviceEvidenceList, wrapper.EvidenceList...), wrapper.Evidences...)
	} else if err := json.Unmarshal(text, &entries); err != nil {
		return nil, attest.Malformed("evidence", "invalid GPU evidence JSON: want an array of objects with attestationReportHexStr and certChainBase64Encoded", err)
	}
	if len(entries) == 0 || len(entries) > maxGPUs {
		return nil, attest.Malformed("evidence", fmt.Sprintf("%d GPU entries, outside 1..%d", len(entries), maxGPUs), nil)
	}

	gpus := make([]GPUEvidence, len(entries))
	for i, e := range entries {
		field := fmt.Sprintf("evidence[%d]", i)
		g, err := e.decode(field)
		if err != nil {
			return nil, err
		}
		gpus[i] = g
	}
	return gpus, nil
}

func (e gpuEntry) decode(field string) (GPUEvidence, error) {
	g := GPUEvidence{Arch: e.Arch, UUID: e.UUID}
	reportText, chainText := e.ReportHex, e.ChainBase64
	if reportText == "" {
		reportText = e.Evidence
	}
	if chainText == "" {
		chainText = e.Certificate
	}
	if reportText == "" {
		return g, attest.Malformed(field, "GPU entry has no attestation report (attestationReportHexStr or evidence)", nil)
	}
	report, err := decodeHex([]byte(reportText), field+".report")
	if err != nil {
		// Trustee's attester may send the report in base64.
		report, err = base64.StdEncoding.DecodeString(reportText)
		if err != nil {
			return g, attest.Malformed(field+".report", "the report is neither hexadecimal nor base64", err)
		}
	}
	g.Report = report
	if chainText != "" {
		chainBytes, err := base64.StdEncoding.DecodeString(chainText)
		if err != nil {
			return g, attest.Malformed(field+".certChainBase64Encoded", "the certificate chain is not base64", err)
		}
		if g.Chain, err = parseChain(chainBytes, field+".certChainBase64Encoded"); err != nil {
			return g, err
		}
	}
	return g, nil
}

// parseChain parses a certificate chain given as concatenated PEM
// certificates or, failing that, as concatenated DER certificates.
func parseChain(data []byte, field string) ([]*x509.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return parsePEMChain(data, field)
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil || len(certs) == 0 {
		return nil, attest.Malformed(field, "the certificate chain is neither PEM nor DER certificates", err)
	}
	return certs, nil
}

// parsePEMChain parses concatenated PEM certificates, in order.
func parsePEMChain(data []byte, field string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, attest.Malformed(field, fmt.Sprintf("certificate %d of the chain is invalid", len(certs)), err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, attest.Malformed(field, "no PEM certificate in the chain", nil)
	}
	return certs, nil
}

// looksLikeReport reports whether the hexadecimal text starts with an SPDM
// 1.1 GET_MEASUREMENTS request followed by a MEASUREMENTS response.
func looksLikeReport(text []byte) bool {
	const prefix = 2 * (requestSize + 2)
	if len(text) < prefix {
		return false
	}
	head, err := decodeHex(text[:prefix], "evidence")
	if err != nil {
		return false
	}
	return head[0] == spdmVersion11 && head[1] == codeGetMeasurements &&
		head[requestSize] == spdmVersion11 && head[requestSize+1] == codeMeasurements
}

// detect reports whether data is one of the evidence forms, without
// verifying it.
func detect(data []byte) bool {
	text := bytes.TrimSpace(data)
	if len(text) == 0 {
		return false
	}
	if text[0] != '[' && text[0] != '{' {
		return looksLikeReport(text)
	}
	gpus, err := parseJSON(text)
	if err != nil {
		return false
	}
	for _, g := range gpus {
		if len(g.Report) < requestSize+2 || g.Report[0] != spdmVersion11 || g.Report[1] != codeGetMeasurements {
			return false
		}
	}
	return true
}
