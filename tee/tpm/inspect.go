package tpm

import (
	"crypto/x509"
	"fmt"

	"github.com/google/go-eventlog/tcg"
	"github.com/google/go-tpm/tpm2"

	"github.com/cloister-dev/cloister/attest"
)

// Inspect decodes TPM evidence without verifying it, for `cloister
// inspect`.
func (Verifier) Inspect(data []byte) (any, error) {
	ev, err := ParseEvidence(data)
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"form":   ev.Form,
		"ak_key": spkiFingerprint(ev.AKKey),
	}
	if ev.AKPublic != nil {
		a := ev.AKPublic.ObjectAttributes
		out["ak_attributes"] = map[string]bool{
			"fixed_tpm": a.FixedTPM, "fixed_parent": a.FixedParent, "restricted": a.Restricted,
			"sign": a.SignEncrypt, "decrypt": a.Decrypt, "sensitive_data_origin": a.SensitiveDataOrigin,
		}
	}
	if len(ev.AKCert) > 0 {
		if cert, err := x509.ParseCertificate(ev.AKCert); err == nil {
			out["ak_certificate"] = attest.NewCertInfo("AK certificate", cert)
		} else {
			out["ak_certificate"] = "invalid: " + err.Error()
		}
	}
	quotes := make([]map[string]any, len(ev.Quotes))
	for i, q := range ev.Quotes {
		quotes[i] = InspectQuote(q)
	}
	out["quotes"] = quotes
	if len(ev.EventLog) > 0 {
		out["event_log"] = inspectEventLog(ev.EventLog)
	}
	return out, nil
}

// InspectQuote decodes a quote's fields without verifying them.
func InspectQuote(q Quote) map[string]any {
	out := map[string]any{
		"signature_scheme": fmt.Sprintf("%#04x", uint16(q.Signature.Scheme)),
		"signature_hash":   q.Signature.Hash.String(),
		"pcr_bank":         hashName(q.PCRs.Hash),
	}
	pcrs := map[string]attest.Hex{}
	for _, i := range q.PCRs.Indexes() {
		pcrs[fmt.Sprint(i)] = q.PCRs.Values[i]
	}
	out["pcrs"] = pcrs
	a, err := ParseAttest(q.Message)
	if err != nil {
		out["tpms_attest"] = "invalid: " + err.Error()
		return out
	}
	b := a.Body
	var selections []map[string]any
	for _, sel := range a.Quote.PCRSelect.PCRSelections {
		selections = append(selections, map[string]any{"hash": fmt.Sprintf("%#04x", uint16(sel.Hash)), "pcrs": selectedPCRs(sel.PCRSelect)})
	}
	out["tpms_attest"] = map[string]any{
		"magic":            fmt.Sprintf("%#08x", uint32(b.Magic)),
		"type":             fmt.Sprintf("%#04x", uint16(b.Type)),
		"qualified_signer": attest.Hex(b.QualifiedSigner.Buffer),
		"extra_data":       attest.Hex(b.ExtraData.Buffer),
		"clock":            b.ClockInfo.Clock,
		"reset_count":      b.ClockInfo.ResetCount,
		"restart_count":    b.ClockInfo.RestartCount,
		"safe":             b.ClockInfo.Safe == tpm2.TPMIYesNo(true),
		"firmware_version": fmt.Sprintf("%#016x", b.FirmwareVersion),
		"pcr_select":       selections,
		"pcr_digest":       attest.Hex(a.Quote.PCRDigest.Buffer),
	}
	return out
}

func inspectEventLog(log []byte) map[string]any {
	parsed, err := tcg.ParseEventLog(log, tcg.ParseOpts{AllowPadding: true})
	if err != nil {
		return map[string]any{"bytes": len(log), "error": err.Error()}
	}
	var algs []string
	for _, a := range parsed.Algs {
		algs = append(algs, a.String())
	}
	var events int
	if len(parsed.Algs) > 0 {
		events = len(parsed.Events(parsed.Algs[0]))
	}
	return map[string]any{"bytes": len(log), "algorithms": algs, "events": events}
}
