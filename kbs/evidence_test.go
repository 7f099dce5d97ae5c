package kbs

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

// A repeated envelope member decodes as encoding/json decodes it: each
// occurrence in turn, so an earlier one of the wrong type is an error.
func TestEnvelopeRepeatedMembers(t *testing.T) {
	tests := []struct {
		name string
		tee  string
		raw  string
	}{
		{"later null keeps the format", "tdx", `{"format":"snp","format":null,"data":"AQID"}`},
		{"later format replaces the earlier", "tdx", `{"format":"snp","format":"dcap","data":"AQID"}`},
		{"format of the wrong type first", "snp", `{"format":5,"format":"snp","data":"AQID"}`},
		{"data of the wrong type first", "snp", `{"data":5,"data":"AQID"}`},
		{"later null clears the data", "snp", `{"data":"AQID","data":null}`},
		{"later data replaces the earlier", "snp", `{"data":"AQID","data":"BAUG"}`},
		{"aux of the wrong type first", "snp", `{"aux":{},"aux":null,"data":"AQID"}`},
		{"later null clears the aux", "snp", `{"aux":"AQID","aux":null,"data":"AQID"}`},
		{"data as an array of bytes", "snp", `{"data":[1,2,3]}`},
		{"bad base64 first", "snp", `{"data":"@@@@","data":"AQID"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, wantErr := decodeEnvelopeWithEncodingJSON(tt.tee, []byte(tt.raw))
			got, err := DecodeEvidence(tt.tee, json.RawMessage(tt.raw))
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
