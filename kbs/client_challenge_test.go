package kbs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloister-dev/cloister/tee/snp"
)

// The client rejects a Challenge that guests reject, one without a nonce
// string or without extra-params, before it requests evidence from its TEE, and
// sends no /attest.
func TestClientRejectsIncompleteChallenge(t *testing.T) {
	em, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, challenge, wantErr string
	}{
		{"no extra-params", `{"nonce":"2YMaoknw9hQMiLuvwhqxSUAn91zY9AHyI54D+DsziMo="}`, "missing member extra-params"},
		{"no nonce", `{"extra-params":""}`, "missing member nonce"},
		{"empty nonce", `{"nonce":"","extra-params":""}`, "missing member nonce"},
		{"null nonce", `{"nonce":null,"extra-params":""}`, "missing member nonce"},
		{"null body", `null`, "missing member nonce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/kbs/v0/auth":
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(tt.challenge))
				case "/kbs/v0/attest":
					attests.Add(1)
					NewProblem(ProblemAttestationError, attestFailedDetail).Write(w)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()

			c := &Client{URL: srv.URL, Attester: em, TEE: "snp"}
			_, err := c.Attest(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Attest error = %v, want one containing %q", err, tt.wantErr)
			}
			if n := attests.Load(); n != 0 {
				t.Errorf("client sent %d /attest requests", n)
			}
		})
	}
}
