package server

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// The /auth, /attest and /resource responses carry a Content-Length equal
// to the body length and are not chunked, although the /attest body, with
// its token, is larger than net/http's response buffer.
func TestResponsesHaveContentLength(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		jar, _ := cookiejar.New(nil)

		nonce := auth(t, ts, jar)
		attest := post(t, ts, jar, "/kbs/v0/attest", attestBody(t, nonce))
		attestBody := wantFramed(t, "attest", attest, http.StatusOK)
		if len(attestBody) <= 2048 {
			t.Errorf("attest body is %d bytes; this test needs one larger than net/http's 2048-byte response buffer", len(attestBody))
		}
		wantFramed(t, "resource", getWithJar(t, ts, jar, "/kbs/v0/resource/"+testSecretPath), http.StatusOK)
		wantFramed(t, "resource without a token", get(t, ts, "/kbs/v0/resource/"+testSecretPath, ""), http.StatusUnauthorized)

		jar2, _ := cookiejar.New(nil)
		authResp := post(t, ts, jar2, "/kbs/v0/auth", `{"version":"0.4.0","tee":"snp","extra-params":{"supported-hash-algorithms":["sha384"]}}`)
		wantFramed(t, "auth", authResp, http.StatusOK)
	})
}

// wantFramed checks that resp has status, a Content-Length equal to its
// body length and no Transfer-Encoding, and returns the body.
func wantFramed(t *testing.T, name string, resp *http.Response, status int) []byte {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the body: %v", name, err)
	}
	if resp.StatusCode != status {
		t.Errorf("%s: status = %s, want %d", name, resp.Status, status)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("%s: Content-Length = %d, want the body length %d", name, resp.ContentLength, len(body))
	}
	if len(resp.TransferEncoding) != 0 {
		t.Errorf("%s: Transfer-Encoding = %v, want none", name, resp.TransferEncoding)
	}
	return body
}

// A verified token whose claims contain no usable TEE key is rejected as a
// token error before the resource policy runs, whether the key is missing
// or malformed.
func TestResourceTokenWithoutTEEKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startService(t, b, serviceOptions{allowEmulated: true})
		signer := ts.srv.signer

		tests := []struct {
			name        string
			runtimeData map[string]any
			// reason is part of the audit record's reason for the denial.
			reason string
		}{
			{"no runtime data", nil, "no tee-pubkey"},
			{"no tee-pubkey", map[string]any{"nonce": "n"}, "no tee-pubkey"},
			{"malformed tee-pubkey", map[string]any{"tee-pubkey": map[string]any{"kty": "OKP", "crv": "X25519", "x": "AA"}}, "OKP"},
			{"tee-pubkey not an object", map[string]any{"tee-pubkey": "EC"}, "cannot unmarshal"},
		}
		for _, tt := range tests {
			annotated := map[string]any{"snp": map[string]any{}}
			if tt.runtimeData != nil {
				annotated["runtime_data_claims"] = tt.runtimeData
			}
			r := &ear.Result{Submods: map[string]*ear.Appraisal{"cpu0": {
				Status:            ear.StatusAffirming,
				AnnotatedEvidence: annotated,
				KeyClaims:         &ear.KeyClaims{TEE: "snp"},
			}}}
			token, err := signer.Sign(r, ts.clock.Now())
			if err != nil {
				t.Fatal(err)
			}

			resp := get(t, ts, "/kbs/v0/resource/"+testSecretPath, token)
			body := wantFramed(t, tt.name, resp, http.StatusUnauthorized)
			p, err := kbs.ParseProblem(resp.StatusCode, body)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if p.Variant() != kbs.ProblemTokenVerifierError {
				t.Errorf("%s: problem = %s, want %s", tt.name, p.Variant(), kbs.ProblemTokenVerifierError)
			}

			recs, err := ts.store.ListAudit(context.Background(), store.AuditQuery{Action: store.AuditDeny})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				t.Fatalf("%s: no deny record in the audit log", tt.name)
			}
			if reason := recs[len(recs)-1].Reason; !strings.Contains(reason, tt.reason) {
				t.Errorf("%s: audit reason = %q, want it to contain %q", tt.name, reason, tt.reason)
			}
		}
	})
}
