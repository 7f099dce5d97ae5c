package kbs

import (
	"encoding/json"
	"strings"
	"testing"
)

// The errors of /attest go to the log line and the audit record. Those
// that name a value from the body cut it to maxEchoedValue bytes, so that
// a body within the size limit does not become a log line of megabytes.
func TestAttestErrorsCutEchoedValues(t *testing.T) {
	long := strings.Repeat("z", 100<<10)
	ecKey := TEEPubKey{Kty: "EC", Crv: "P-256", Alg: AlgECDHESA256KW, X: "AA", Y: "AA"}
	tests := []struct {
		name string
		err  func() error
	}{
		{"kty", func() error {
			var k TEEPubKey
			return json.Unmarshal([]byte(`{"kty":"`+long+`"}`), &k)
		}},
		{"alg", func() error {
			k := ecKey
			k.Alg = long
			return checkTEEKey(k)
		}},
		{"crv", func() error {
			k := ecKey
			k.Crv = long
			return checkTEEKey(k)
		}},
		{"init-data format", func() error {
			_, err := initDataDigest(&InitData{Format: long, Body: `algorithm = "sha256"`})
			return err
		}},
		{"init-data algorithm", func() error {
			_, err := initDataDigest(&InitData{Format: "toml", Body: `algorithm = "` + long + `"`})
			return err
		}},
		{"envelope format", func() error {
			_, err := DecodeEvidence("snp", json.RawMessage(`{"format":"`+long+`","data":"AQID"}`))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "zzz") {
				t.Errorf("error %.200q does not name the value", err)
			}
			if len(err.Error()) > 1024 {
				t.Errorf("error is %d bytes, want at most 1024", len(err.Error()))
			}
		})
	}
}
