package kbs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
	"github.com/cloister-dev/cloister/internal/printable"
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
// snp, tdx, sgx, az-snp-vtpm, az-tdx-vtpm and nvidia attesters. Each form
// is recognized by its members: data for the envelope, and for the
// attesters' JSON attestation_report (snp), quote (tdx, sgx), tpm_quote
// (Azure) and device_evidence_list (nvidia).
//
// The members that select a form are matched exactly, as JSON defines
// them and Trustee's guests write them, and so are the members of the
// envelope and of the tdx, sgx and nvidia attesters' JSON. A repeated
// envelope member is an error. The snp attester's JSON is decoded
// with encoding/json, which also takes a member whose name differs only in
// case. The report is rebuilt from it and its signature checked, so such a
// member cannot change what verifies.
func DecodeEvidence(tee string, raw json.RawMessage) (attest.Evidence, error) {
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		return attest.Evidence{}, fmt.Errorf("%s evidence is not valid JSON: %w; send the evidence as a JSON object", tee, err)
	}
	return decodeValidEvidence(tee, raw)
}

// decodeValidEvidence is DecodeEvidence for raw that is valid JSON, such
// as the primary evidence of a parsed Attestation, whose whole body
// ParseAttestation has validated.
func decodeValidEvidence(tee string, raw json.RawMessage) (attest.Evidence, error) {
	obj, err := jsonvalue.ParseEncodedObject(raw)
	if err != nil {
		return attest.Evidence{}, fmt.Errorf("%s evidence is not a JSON object: %w; send Cloister's evidence envelope {\"format\", \"data\", \"aux\"} or the guest attester's JSON object", tee, err)
	}
	has := func(name string) bool {
		_, ok := obj.Get(name)
		return ok
	}
	switch {
	case tee == "sample" || tee == "sampledevice":
		return attest.Evidence{Format: SampleFormat, Data: bytes.Clone(raw)}, nil
	case tee == "nvidia" && has(nvidiaDeviceListMember):
		if has("data") {
			return attest.Evidence{}, fmt.Errorf("nvidia evidence has both data and %s, so it is neither Cloister's envelope nor the NVIDIA attester's JSON alone; send one of the two", nvidiaDeviceListMember)
		}
		return decodeNVIDIADeviceJSON(obj)
	case has("data"):
		return decodeEnvelope(tee, obj)
	case tee == "snp" && has("attestation_report"):
		return decodeSNPGuestJSON(raw)
	case (tee == "tdx" || tee == "sgx") && has("quote"):
		return decodeQuoteJSON(tee, obj)
	case (tee == "az-snp-vtpm" || tee == "az-tdx-vtpm") && has("tpm_quote"):
		// The azure-vtpm verifier reads the attester's JSON as it is.
		return attest.Evidence{Format: formatForTEE(tee), Data: bytes.Clone(raw)}, nil
	}
	if tee == "nvidia" {
		return attest.Evidence{}, fmt.Errorf("nvidia evidence has neither %s (the NVIDIA attester's JSON) nor data (Cloister's evidence envelope); send one of the two", nvidiaDeviceListMember)
	}
	return attest.Evidence{}, fmt.Errorf("%s evidence in the guest attester's native JSON form is not supported; send Cloister's evidence envelope {\"format\", \"data\", \"aux\"}", tee)
}

// decodeEnvelope reads Cloister's evidence envelope from obj, whose
// members are valid JSON. It matches the member names exactly and rejects
// a repeated format, data or aux, as ParseAttestation does for the members
// of the Attestation around it. Only kbs.Client writes the envelope, with
// encoding/json, which writes each member once, while Trustee's guests
// send their attesters' JSON instead.
func decodeEnvelope(tee string, obj *jsonvalue.Object) (attest.Evidence, error) {
	var ev attest.Evidence
	text, err := envelopeMember(tee, obj, "format")
	if err != nil {
		return attest.Evidence{}, err
	}
	if text != nil {
		if err := json.Unmarshal(text, &ev.Format); err != nil {
			return attest.Evidence{}, fmt.Errorf("%s evidence envelope: invalid format: %w; format must be a string such as \"snp\"", tee, err)
		}
	}
	if text, err = envelopeMember(tee, obj, "data"); err != nil {
		return attest.Evidence{}, err
	}
	if text != nil {
		if ev.Data, err = decodeBase64JSON(text); err != nil {
			return attest.Evidence{}, fmt.Errorf("%s evidence envelope: invalid data: %w; data must be standard base64 with padding", tee, err)
		}
	}
	if text, err = envelopeMember(tee, obj, "aux"); err != nil {
		return attest.Evidence{}, err
	}
	if text != nil {
		if ev.Aux, err = decodeBase64JSON(text); err != nil {
			return attest.Evidence{}, fmt.Errorf("%s evidence envelope: invalid aux: %w; aux must be standard base64 with padding", tee, err)
		}
	}

	if len(ev.Data) == 0 {
		return attest.Evidence{}, fmt.Errorf("%s evidence envelope has no data; put the evidence in data, in standard base64", tee)
	}
	if ev.Format == "" {
		ev.Format = formatForTEE(tee)
	}
	if ev.Format != formatForTEE(tee) {
		return attest.Evidence{}, fmt.Errorf("evidence format %s does not match the session's tee %q; send %q evidence, or start a session for the TEE of this evidence", printable.Quote(ev.Format, maxEchoedValue), tee, formatForTEE(tee))
	}
	return ev, nil
}

// envelopeMember returns the value text of the envelope member name, or
// nil when obj lacks it, and an error that names the member when it occurs
// more than once.
func envelopeMember(tee string, obj *jsonvalue.Object, name string) ([]byte, error) {
	text, err := onlyMember(obj, "", name)
	if err != nil {
		return nil, fmt.Errorf("%s evidence envelope: %w", tee, err)
	}
	return text, nil
}

// decodeBase64JSON decodes text, a valid JSON value, as encoding/json
// decodes a []byte: null gives nil, a string its standard base64 content.
func decodeBase64JSON(text []byte) ([]byte, error) {
	// encoding/json base64-decodes a string without escapes as it is, so
	// such a string is decoded here without a second scan of the text.
	if n := len(text); n >= 2 && text[0] == '"' && bytes.IndexByte(text, '\\') < 0 {
		inner := text[1 : n-1]
		out := make([]byte, base64.StdEncoding.DecodedLen(len(inner)))
		k, err := base64.StdEncoding.Decode(out, inner)
		if err != nil {
			return nil, err
		}
		return out[:k], nil
	}
	var out []byte
	err := json.Unmarshal(text, &out)
	return out, err
}

// decodeQuoteJSON reads the tdx and sgx attesters' JSON: the DCAP quote
// and the TDX guest's CC event log (cc_eventlog, null when the guest has
// none), each in standard base64. The event log becomes Evidence.Aux, which
// the dcap verifier replays against the quote's RTMRs; an empty string
// counts as absent, as Trustee's verifier takes it.
//
// Members are read by their exact names from obj, because encoding/json
// would also fill a struct field from a member such as "Quote".
func decodeQuoteJSON(tee string, obj *jsonvalue.Object) (attest.Evidence, error) {
	var quoteText string
	var eventLog *string
	text, _ := obj.Get("quote")
	if err := json.Unmarshal(text, &quoteText); err != nil {
		return attest.Evidence{}, attest.Malformed("quote", "invalid "+tee+" evidence JSON: quote is not a string", err)
	}
	if text, ok := obj.Get("cc_eventlog"); ok {
		if err := json.Unmarshal(text, &eventLog); err != nil {
			return attest.Evidence{}, attest.Malformed("cc_eventlog", "invalid "+tee+" evidence JSON: cc_eventlog is neither a string nor null", err)
		}
	}
	quote, err := base64.StdEncoding.DecodeString(quoteText)
	if err != nil {
		return attest.Evidence{}, attest.Malformed("quote", "not standard base64", err)
	}
	if len(quote) == 0 {
		return attest.Evidence{}, attest.Malformed("quote", "empty or null in the "+tee+" evidence JSON", nil).
			WithFix("put the base64 DCAP quote from the guest attester in quote")
	}
	ev := attest.Evidence{Format: formatForTEE(tee), Data: quote}
	if eventLog != nil && *eventLog != "" {
		if ev.Aux, err = base64.StdEncoding.DecodeString(*eventLog); err != nil {
			return attest.Evidence{}, attest.Malformed("cc_eventlog", "not standard base64", err).
				WithFix("put the base64 CC event log from the guest attester in cc_eventlog, or null when the guest has none")
		}
	}
	return ev, nil
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
