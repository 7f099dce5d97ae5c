package kbs

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// A repeated envelope member is rejected with an error that names it,
// whatever its copies contain. An envelope whose members occur once decodes
// as encoding/json decodes it.
func TestEnvelopeRepeatedMembers(t *testing.T) {
	tests := []struct {
		name string
		tee  string
		raw  string
		// wantErr, when set, is the error for a repeated member. Otherwise
		// the result must be encoding/json's.
		wantErr string
	}{
		{"later null keeps the format", "tdx", `{"format":"snp","format":null,"data":"AQID"}`, "member format occurs more than once"},
		{"later format replaces the earlier", "tdx", `{"format":"snp","format":"dcap","data":"AQID"}`, "member format occurs more than once"},
		{"format of the wrong type first", "snp", `{"format":5,"format":"snp","data":"AQID"}`, "member format occurs more than once"},
		{"data of the wrong type first", "snp", `{"data":5,"data":"AQID"}`, "member data occurs more than once"},
		{"later null clears the data", "snp", `{"data":"AQID","data":null}`, "member data occurs more than once"},
		{"later data replaces the earlier", "snp", `{"data":"AQID","data":"BAUG"}`, "member data occurs more than once"},
		{"aux of the wrong type first", "snp", `{"aux":{},"aux":null,"data":"AQID"}`, "member aux occurs more than once"},
		{"later null clears the aux", "snp", `{"aux":"AQID","aux":null,"data":"AQID"}`, "member aux occurs more than once"},
		{"repeated through an escape", "snp", `{"data":"AQID","d\u0061ta":"AQID"}`, "member data occurs more than once"},
		{"data as an array of bytes", "snp", `{"data":[1,2,3]}`, ""},
		{"bad base64 first", "snp", `{"data":"@@@@","data":"AQID"}`, "member data occurs more than once"},
		{"null format", "tdx", `{"format":null,"data":"AQID"}`, ""},
		{"null data", "snp", `{"data":null}`, ""},
		{"null aux", "snp", `{"aux":null,"data":"AQID"}`, ""},
		{"all members once", "tdx", `{"format":"dcap","data":"AQID","aux":"BAUG"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvidence(tt.tee, json.RawMessage(tt.raw))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("DecodeEvidence(%s) = %+v, want an error containing %q", tt.raw, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("DecodeEvidence(%s) error %q, want it to contain %q", tt.raw, err, tt.wantErr)
				}
				return
			}

			want, wantErr := decodeEnvelopeWithEncodingJSON(tt.tee, []byte(tt.raw))
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("DecodeEvidence(%s) error %v; encoding/json gives error %v", tt.raw, err, wantErr)
			}
			if err != nil {
				return
			}
			if got.Format != want.Format || !bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Aux, want.Aux) {
				t.Errorf("DecodeEvidence(%s) = %+v; encoding/json gives %+v", tt.raw, got, want)
			}
		})
	}
}

// decodeEnvelopeWithEncodingJSON decodes an evidence envelope with
// encoding/json and applies DecodeEvidence's checks.
func decodeEnvelopeWithEncodingJSON(tee string, raw []byte) (attest.Evidence, error) {
	var ev attest.Evidence
	if err := json.Unmarshal(raw, &ev); err != nil {
		return attest.Evidence{}, err
	}
	if len(ev.Data) == 0 {
		return attest.Evidence{}, errNoData
	}
	if ev.Format == "" {
		ev.Format = formatForTEE(tee)
	}
	if ev.Format != formatForTEE(tee) {
		return attest.Evidence{}, errFormat
	}
	return ev, nil
}

var (
	errNoData = errors.New("no data")
	errFormat = errors.New("format does not match the tee")
)
