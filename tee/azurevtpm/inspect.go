package azurevtpm

import (
	"encoding/json"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/tpm"
)

// Inspect decodes the evidence without verifying it, for `cloister
// inspect`. The hardware report is decoded by the snp or dcap verifier
// when it is registered and can inspect.
func (Verifier) Inspect(data []byte) (any, error) {
	ev, err := ParseEvidence(data)
	if err != nil {
		return nil, err
	}
	hcl, err := ParseHCLReport(ev.HCLReport)
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"version": ev.Version,
		"hcl": map[string]any{
			"version":      hcl.Version,
			"report_size":  hcl.ReportSize,
			"request_type": hcl.RequestType,
			"status":       hcl.Status,
			"report_type":  hcl.ReportType,
			"hash":         hcl.Hash.String(),
		},
		"vtpm_quote": tpm.InspectQuote(ev.Quote),
	}
	var runtime any
	if err := json.Unmarshal(hcl.VariableData, &runtime); err == nil {
		out["runtime_data"] = runtime
	} else {
		out["runtime_data"] = "invalid JSON: " + err.Error()
	}

	name, hw := "snp", hcl.HardwareReport
	if hcl.ReportType == ReportTypeTDX {
		name, hw = "dcap", ev.TDQuote
		out["tdreport_report_data"] = attest.Hex(hcl.tdReportData())
	}
	if v, ok := attest.Lookup(name); ok {
		if in, ok := v.(attest.Inspector); ok {
			if fields, err := in.Inspect(hw); err == nil {
				out["hardware_report"] = fields
			} else {
				out["hardware_report"] = "invalid: " + err.Error()
			}
		}
	}
	if _, ok := out["hardware_report"]; !ok {
		out["hardware_report"] = attest.Hex(hw)
	}
	return out, nil
}
