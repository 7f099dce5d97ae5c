package kbs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// SampleFormat is the evidence format of the protocol's sample and
// sampledevice TEEs: unsigned JSON {"svn", "report_data"} that guests send
// when they run in no TEE.
const SampleFormat = "kbs-sample"

// DecodeEvidence turns a primary or device evidence value of the KBS tee
// into attest.Evidence. It accepts Cloister's evidence envelope (the JSON
// form of attest.Evidence: {"format", "data", "aux"}, data and aux in
// standard base64), which kbs.Client sends for every TEE, the sample form
// of the sample and sampledevice TEEs, and the JSON of the Trustee guest's
// snp, tdx, sgx, az-snp-vtpm and az-tdx-vtpm attesters.
func DecodeEvidence(tee string, raw json.RawMessage) (attest.Evidence, error) {
	// One decoding of raw tells the forms apart and, for the envelope,
	// already holds its members.
	var probe evidenceProbe
	if err := json.Unmarshal(raw, &probe); err != nil {
		return attest.Evidence{}, fmt.Errorf("%s evidence is not a JSON object: %w", tee, err)
	}
	switch {
	case tee == "sample" || tee == "sampledevice":
		return attest.Evidence{Format: SampleFormat, Data: bytes.Clone(raw)}, nil
	case probe.Data.present:
		if probe.Data.err != nil {
			return attest.Evidence{}, fmt.Errorf("%s evidence envelope: data: %w", tee, probe.Data.err)
		}
		if probe.Aux.err != nil {
			return attest.Evidence{}, fmt.Errorf("%s evidence envelope: aux: %w", tee, probe.Aux.err)
		}
		var format string
		if probe.Format != nil {
			if err := json.Unmarshal(probe.Format, &format); err != nil {
				return attest.Evidence{}, fmt.Errorf("%s evidence envelope: format: %w", tee, err)
			}
		}
		ev := attest.Evidence{Format: format, Data: probe.Data.value, Aux: probe.Aux.value}
		if len(ev.Data) == 0 {
			return attest.Evidence{}, fmt.Errorf("%s evidence envelope has no data", tee)
		}
		if ev.Format == "" {
			ev.Format = formatForTEE(tee)
		}
		if ev.Format != formatForTEE(tee) {
			return attest.Evidence{}, fmt.Errorf("evidence format %q does not match the session's tee %q", ev.Format, tee)
		}
		return ev, nil
	case tee == "snp" && probe.AttestationReport.present:
		return decodeSNPGuestJSON(raw)
	case (tee == "tdx" || tee == "sgx") && probe.Quote.present:
		return decodeQuoteJSON(tee, raw)
	case (tee == "az-snp-vtpm" || tee == "az-tdx-vtpm") && probe.TPMQuote.present:
		// The azure-vtpm verifier reads the attester's JSON as it is.
		return attest.Evidence{Format: formatForTEE(tee), Data: bytes.Clone(raw)}, nil
	}
	return attest.Evidence{}, fmt.Errorf("%s evidence in the guest attester's native JSON form is not supported; send Cloister's evidence envelope {\"format\", \"data\", \"aux\"}", tee)
}

// evidenceProbe holds what DecodeEvidence reads of an evidence object:
// the envelope's members, and which member names the guest attesters'
// native forms by.
type evidenceProbe struct {
	Format            json.RawMessage `json:"format"`
	Data              base64Member    `json:"data"`
	Aux               base64Member    `json:"aux"`
	AttestationReport presentMember   `json:"attestation_report"`
	Quote             presentMember   `json:"quote"`
	TPMQuote          presentMember   `json:"tpm_quote"`
}

// presentMember records whether an object has the member, whatever its
// value, null included.
type presentMember struct{ present bool }

func (m *presentMember) UnmarshalJSON([]byte) error {
	m.present = true
	return nil
}

// base64Member records whether an object has the member, and its value
// decoded as encoding/json decodes a []byte. A decoding error is kept in
// err instead of failing the whole object, because only the envelope form
// reads the value.
type base64Member struct {
	present bool
	value   []byte
	err     error
}

func (m *base64Member) UnmarshalJSON(text []byte) error {
	m.present = true
	// encoding/json base64-decodes a string without escapes as it is, so
	// such a string is decoded here without a second scan of the text.
	if n := len(text); n >= 2 && text[0] == '"' && text[n-1] == '"' && bytes.IndexByte(text, '\\') < 0 {
		inner := text[1 : n-1]
		m.value = make([]byte, base64.StdEncoding.DecodedLen(len(inner)))
		k, err := base64.StdEncoding.Decode(m.value, inner)
		m.value, m.err = m.value[:k], err
		return nil
	}
	m.err = json.Unmarshal(text, &m.value)
	return nil
}

// decodeQuoteJSON reads the tdx and sgx attesters' JSON: the DCAP quote in
// standard base64. NOTE: the TDX attester's cc_eventlog is not replayed
// against the RTMRs; policies see the RTMR values only.
func decodeQuoteJSON(tee string, raw json.RawMessage) (attest.Evidence, error) {
	var q struct {
		Quote string `json:"quote"`
	}
	if err := json.Unmarshal(raw, &q); err != nil {
		return attest.Evidence{}, attest.Malformed("quote", "invalid "+tee+" evidence JSON", err)
	}
	quote, err := base64.StdEncoding.DecodeString(q.Quote)
	if err != nil {
		return attest.Evidence{}, attest.Malformed("quote", "not standard base64", err)
	}
	return attest.Evidence{Format: formatForTEE(tee), Data: quote}, nil
}

// formatForTEE maps a KBS tee name to the Cloister verifier name.
func formatForTEE(tee string) string {
	switch tee {
	case "sgx", "tdx":
		return "dcap"
	case "az-snp-vtpm", "az-tdx-vtpm":
		return string(attest.TEEAzureVTPM)
	case "nvidia":
		return string(attest.TEENVGPU)
	}
	return tee
}

// SampleVerifier reads the evidence of the sample TEEs. Sample evidence is
// unsigned, so it proves nothing about hardware: the claims are labelled
// emulated, the trust anchor a test key, and the signature check a
// required check that did not run, so the default appraisal rejects them.
// It exists so that guests without a TEE can exercise the protocol.
type SampleVerifier struct{}

// Name returns SampleFormat.
func (SampleVerifier) Name() string { return SampleFormat }

// Detect reports whether data has the sample evidence members.
func (SampleVerifier) Detect(data []byte) bool {
	var s sampleEvidence
	return json.Unmarshal(data, &s) == nil && s.SVN != "" && s.ReportData != ""
}

type sampleEvidence struct {
	SVN        string `json:"svn"`
	ReportData string `json:"report_data"`
}

// Verify decodes the sample evidence; report_data is standard base64.
func (SampleVerifier) Verify(ctx context.Context, ev attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	var s sampleEvidence
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		return nil, attest.Malformed("sample evidence", "not a JSON object {svn, report_data}", err)
	}
	rd, err := base64.StdEncoding.Strict().DecodeString(s.ReportData)
	if err != nil {
		return nil, attest.Malformed("report_data", "not standard base64", err)
	}
	c := &attest.Claims{
		TEE:      "sample",
		Emulated: true,
		TrustAnchor: attest.TrustAnchorRef{Kind: attest.AnchorCallerKey, TestKey: true,
			Name: "none: sample evidence carries no signature"},
		ReportData: rd,
		VerifiedAt: opts.Time(),
	}
	c.SetAttribute("svn", s.SVN)
	c.Skip("signature", true, "sample evidence is unsigned and proves no TEE")
	return c, nil
}
