package nvgpu

import "github.com/cloister-dev/cloister/attest"

// inspection is the JSON form of one unverified GPU report.
type inspection struct {
	Arch           string            `json:"arch,omitempty"`
	UUID           string            `json:"uuid,omitempty"`
	RequestNonce   attest.Hex        `json:"request_nonce"`
	Operation      byte              `json:"measurement_operation"`
	SlotID         byte              `json:"slot_id"`
	ResponderNonce attest.Hex        `json:"responder_nonce"`
	Blocks         []inspectedBlock  `json:"measurement_blocks"`
	Opaque         map[string]any    `json:"opaque_data"`
	Signature      attest.Hex        `json:"signature"`
	TrailingBytes  int               `json:"trailing_zero_bytes,omitempty"`
	Chain          []attest.CertInfo `json:"certificate_chain,omitempty"`
}

type inspectedBlock struct {
	Index     byte       `json:"index"`
	ValueType byte       `json:"dmtf_value_type"`
	Value     attest.Hex `json:"value"`
}

// Inspect decodes every GPU report of the evidence without verifying it.
func (*Verifier) Inspect(data []byte) (any, error) {
	gpus, err := ParseEvidence(data)
	if err != nil {
		return nil, err
	}
	out := make([]inspection, 0, len(gpus))
	for _, g := range gpus {
		report, err := ParseReport(g.Report)
		if err != nil {
			return nil, err
		}
		in := inspection{
			Arch:           g.Arch,
			UUID:           g.UUID,
			RequestNonce:   report.Request.Nonce[:],
			Operation:      report.Request.Operation,
			SlotID:         report.Request.SlotID,
			ResponderNonce: report.Response.Nonce[:],
			Opaque:         report.Response.Fields.Attributes(),
			Signature:      report.Response.Signature,
			TrailingBytes:  report.Trailing,
		}
		for _, b := range report.Response.Blocks {
			in.Blocks = append(in.Blocks, inspectedBlock{Index: b.Index, ValueType: b.ValueType, Value: b.Value})
		}
		for i, c := range g.Chain {
			in.Chain = append(in.Chain, attest.NewCertInfo(chainRole(i, len(g.Chain)), c))
		}
		out = append(out, in)
	}
	return out, nil
}
