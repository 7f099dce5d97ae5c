package kbs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// The tdx and sgx attesters' JSON carries the quote and, for TDX, the CC
// event log, which becomes Evidence.Aux.
func TestDecodeQuoteJSONEventLog(t *testing.T) {
	quote := []byte{3, 0, 2, 0}
	log := []byte("event log bytes")
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name    string
		tee     string
		raw     string
		wantAux []byte
		wantErr string
	}{
		{"null log", "tdx", `{"cc_eventlog":null,"quote":"` + b64(quote) + `"}`, nil, ""},
		{"absent log", "tdx", `{"quote":"` + b64(quote) + `"}`, nil, ""},
		{"empty log", "tdx", `{"cc_eventlog":"","quote":"` + b64(quote) + `"}`, nil, ""},
		{"with log", "tdx", `{"cc_eventlog":"` + b64(log) + `","quote":"` + b64(quote) + `"}`, log, ""},
		{"SGX with log", "sgx", `{"cc_eventlog":"` + b64(log) + `","quote":"` + b64(quote) + `"}`, log, ""},
		{"log not base64", "tdx", `{"cc_eventlog":"@@@@","quote":"` + b64(quote) + `"}`, nil, "cc_eventlog: not standard base64"},
		{"log not a string", "tdx", `{"cc_eventlog":5,"quote":"` + b64(quote) + `"}`, nil, "invalid tdx evidence JSON"},
		{"quote not a string", "tdx", `{"quote":5}`, nil, "quote is not a string"},
		{"null quote", "tdx", `{"quote":null}`, nil, "empty or null"},
		// Members are read by exact name, so a member whose name differs
		// in case is ignored, as Trustee's verifier ignores it.
		{"other case ignored", "tdx", `{"quote":"` + b64(quote) + `","Quote":"` + b64([]byte{9, 9}) + `","CC_EVENTLOG":"` + b64(log) + `"}`, nil, ""},
		{"other case only", "tdx", `{"Quote":"` + b64(quote) + `"}`, nil, "native JSON form is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeEvidence(tt.tee, json.RawMessage(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeEvidence: %v, expected an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeEvidence: %v", err)
			}
			if ev.Format != "dcap" || !bytes.Equal(ev.Data, quote) {
				t.Errorf("evidence %+v, expected the dcap quote %x", ev, quote)
			}
			if !bytes.Equal(ev.Aux, tt.wantAux) {
				t.Errorf("aux %q, expected %q", ev.Aux, tt.wantAux)
			}
		})
	}
}

// An emulated TDX guest's evidence in the Trustee attester's JSON verifies
// with its event log replayed, and fails when the log is altered.
func TestQuoteJSONEventLogVerifies(t *testing.T) {
	e, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := e.Attest(context.Background(), []byte("report data"))
	if err != nil {
		t.Fatal(err)
	}
	emulatedLog, err := e.EventLog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Raw: e.Root().Raw, Certificate: e.Root()})
	opts := attest.Options{Collateral: e.Collateral(), TrustAnchors: anchors}

	for _, tc := range []struct {
		name   string
		log    []byte
		result attest.CheckResult
	}{
		{"matching log", emulatedLog, attest.CheckPassed},
		{"no log", nil, attest.CheckNotChecked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logJSON := "null"
			if tc.log != nil {
				logJSON = `"` + base64.StdEncoding.EncodeToString(tc.log) + `"`
			}
			raw := `{"cc_eventlog":` + logJSON + `,"quote":"` + base64.StdEncoding.EncodeToString(ev.Data) + `"}`
			decoded, err := DecodeEvidence("tdx", json.RawMessage(raw))
			if err != nil {
				t.Fatal(err)
			}
			claims, err := attest.Verify(context.Background(), decoded, opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if check, _ := claims.FindCheck("event-log"); check.Result != tc.result {
				t.Errorf("event-log check %s (%s), expected %s", check.Result, check.Detail, tc.result)
			}
		})
	}

	t.Run("altered log", func(t *testing.T) {
		log := bytes.Clone(emulatedLog)
		// Flip a byte of the first measured event's SHA-384 digest: the
		// Spec ID event takes 32+33 bytes, the event header 14 more.
		log[32+33+14] ^= 1
		raw := `{"cc_eventlog":"` + base64.StdEncoding.EncodeToString(log) + `","quote":"` + base64.StdEncoding.EncodeToString(ev.Data) + `"}`
		decoded, err := DecodeEvidence("tdx", json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		_, err = attest.Verify(context.Background(), decoded, opts)
		if !errors.Is(err, attest.ErrBinding) || !strings.Contains(err.Error(), "RTMR0") {
			t.Fatalf("Verify: %v, expected an RTMR0 mismatch", err)
		}
	})
}
