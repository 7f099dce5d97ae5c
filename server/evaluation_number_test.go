package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// The service applies Config.MinTCBEvaluationDataNumber in the default
// TDX attestation policy. The emulated guest's TCB Info and QE Identity
// have tcbEvaluationDataNumber 17. A minimum above it puts the reason into
// the token and denies the secret.
func TestMinTCBEvaluationDataNumberService(t *testing.T) {
	tests := []struct {
		minimum uint32
		status  int
		want    string
	}{
		{0, http.StatusOK, ""},
		{17, http.StatusOK, ""},
		{18, http.StatusUnauthorized, "TCB evaluation data number 17 (the lower of the TCB Info's and the QE Identity's) is below the minimum 18"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("minimum %d", tc.minimum), func(t *testing.T) {
			ts, em := startTDXServiceWith(t, serviceOptions{minEvaluationNumber: tc.minimum})
			jar, _ := cookiejar.New(nil)
			_, resp := attestTDXJSON(t, ts, em, jar)

			var tok struct {
				Token string `json:"token"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(tok.Token, ".")
			if len(parts) != 3 {
				t.Fatalf("token has %d parts, expected 3", len(parts))
			}
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(payload), tc.want) {
				t.Errorf("token claims lack %q: %s", tc.want, payload)
			}

			resp = getWithJar(t, ts, jar, "/kbs/v0/resource/"+testSecretPath)
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("resource: %s %s, want status %d", resp.Status, b, tc.status)
			}
		})
	}
}
