package kbs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// The copy of the event log limit that sizes DefaultMaxBodySize equals
// the limit of the dcap verifier.
func TestMaxEventLogSizeMatchesDCAP(t *testing.T) {
	if maxEventLogSize != dcap.MaxEventLogSize {
		t.Errorf("maxEventLogSize is %d, but dcap.MaxEventLogSize is %d; set it to the dcap value", maxEventLogSize, dcap.MaxEventLogSize)
	}
}

// The largest accepted event log makes an /attest body grow by at most
// its base64 and eventLogMember, in Cloister's evidence envelope and in
// the Trustee TDX attester's JSON. So DefaultMaxBodySize leaves the former
// limit, 4 MiB, for the rest of the body.
func TestBodyLimitFitsLargestEventLog(t *testing.T) {
	quote := bytes.Repeat([]byte{0x04}, 8<<10)
	encodedQuote := base64.StdEncoding.EncodeToString(quote)
	log := bytes.Repeat([]byte{0xff}, dcap.MaxEventLogSize)
	encodedLog := base64.StdEncoding.EncodeToString(log)
	for _, tc := range []struct {
		name             string
		withLog, without any
	}{
		{"evidence envelope",
			attest.Evidence{Format: "dcap", Data: quote, Aux: log},
			attest.Evidence{Format: "dcap", Data: quote}},
		{"Trustee JSON with null",
			map[string]any{"cc_eventlog": encodedLog, "quote": encodedQuote},
			map[string]any{"cc_eventlog": nil, "quote": encodedQuote}},
		{"Trustee JSON without member",
			map[string]any{"cc_eventlog": encodedLog, "quote": encodedQuote},
			map[string]any{"quote": encodedQuote}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			growth := int64(len(attestationBody(t, tc.withLog)) - len(attestationBody(t, tc.without)))
			maxGrowth := int64(len(encodedLog) + len(eventLogMember))
			if growth > maxGrowth {
				t.Errorf("the event log adds %d bytes to the body, more than %d: its base64 and %s", growth, maxGrowth, eventLogMember)
			}
			if headroom := DefaultMaxBodySize - growth; headroom < 4<<20 {
				t.Errorf("DefaultMaxBodySize %d leaves %d bytes besides the event log, less than 4 MiB", DefaultMaxBodySize, headroom)
			}
		})
	}
}

// attestationBody returns the /attest body that Client sends for the
// primary evidence primary.
func attestationBody(t *testing.T, primary any) []byte {
	t.Helper()
	raw, err := json.Marshal(primary)
	if err != nil {
		t.Fatal(err)
	}
	key := TEEPubKey{Kty: "EC", Crv: "P-256", Alg: "ES256", X: "x", Y: "y"}
	body, err := json.Marshal(Attestation{RuntimeData: RuntimeData{Nonce: "nonce", TEEPubKey: key},
		TEEEvidence: TEEEvidence{PrimaryEvidence: raw}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}
