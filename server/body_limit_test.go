package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// paddedLogAttester is an emulated TDX guest whose CC event log is the
// emulator's, padded with 0xFF to size bytes as firmware pads the CCEL
// area.
type paddedLogAttester struct {
	*dcap.Emulator
	size int
}

func (a paddedLogAttester) EventLog(ctx context.Context) ([]byte, error) {
	log, err := a.Emulator.EventLog(ctx)
	if err != nil {
		return nil, err
	}
	return append(log, bytes.Repeat([]byte{0xff}, a.size-len(log))...), nil
}

// A TDX guest whose CC event log has the largest size the verifier
// accepts attests through the KBS client, and the token's event-log check
// passed. The log's base64 alone exceeds the former 4 MiB body limit.
func TestTDXLargestEventLogAttests(t *testing.T) {
	ts, em := startTDXService(t)
	client := newKBSClient(ts.URL, ts.Client().Transport, paddedLogAttester{Emulator: em, size: dcap.MaxEventLogSize})
	token, err := client.Attest(context.Background())
	if err != nil {
		t.Fatalf("Attest with a %d-byte event log: %v", dcap.MaxEventLogSize, err)
	}

	claims := tokenTDXClaims(t, token)
	if check, _ := claims.FindCheck("event-log"); check.Result != attest.CheckPassed {
		t.Errorf("event-log check %q (%s), expected passed", check.Result, check.Detail)
	}
	secret, err := client.Resource(context.Background(), testSecretPath)
	if err != nil {
		t.Fatalf("Resource: %v", err)
	}
	if !bytes.Equal(secret, testSecret) {
		t.Errorf("secret %q, expected %q", secret, testSecret)
	}
}

// tokenTDXClaims returns the TDX claims of cpu0 in the EAR token, read
// without checking the signature.
func tokenTDXClaims(t *testing.T, token string) attest.Claims {
	t.Helper()
	submods, _ := unverifiedClaims(t, token)["submods"].(map[string]any)
	cpu0, ok := submods["cpu0"].(map[string]any)
	if !ok {
		t.Fatalf("the token has no cpu0 submod: %v", submods)
	}
	annotated, _ := cpu0["ear.veraison.annotated-evidence"].(map[string]any)
	raw, err := json.Marshal(annotated["tdx"])
	if err != nil {
		t.Fatal(err)
	}

	var claims attest.Claims
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("cpu0 TDX claims %s: %v", raw, err)
	}
	return claims
}

// An /auth body of kbs.MaxAuthBodySize bytes is read, and one byte more
// gets AttestationError with status 413 and the limit in the detail. An
// /attest body of one byte over kbs.DefaultMaxBodySize gets
// AttestationError with status 413 and the limit in the detail and in the
// log line.
func TestKBSBodyLimit(t *testing.T) {
	ts, logs := startLogged(t, startService(t, backends(t)[0], serviceOptions{allowEmulated: true}), nil)
	limit := int(kbs.DefaultMaxBodySize)
	overLimit := fmt.Sprintf("exceeds the limit of %d bytes", limit)
	authLimit := kbs.MaxAuthBodySize
	overAuthLimit := fmt.Sprintf("exceeds the limit of %d bytes", authLimit)
	authBody := `{"version":"0.4.0","tee":"snp","extra-params":""}`
	padded := func(body string, size int) string { return body + strings.Repeat(" ", size-len(body)) }

	t.Run("auth at the limit", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		resp := post(t, ts, jar, "/kbs/v0/auth", padded(authBody, authLimit))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %s, expected 200 for a body of exactly %d bytes", resp.Status, authLimit)
		}
	})
	t.Run("auth over the limit", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		resp := post(t, ts, jar, "/kbs/v0/auth", padded(authBody, authLimit+1))
		body := wantProblemResponse(t, resp, kbs.ProblemAttestationError, http.StatusRequestEntityTooLarge)
		if !strings.Contains(body, overAuthLimit) {
			t.Errorf("response %s does not contain %q", body, overAuthLimit)
		}
	})
	t.Run("attest over the limit", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		auth(t, ts, jar)
		resp := post(t, ts, jar, "/kbs/v0/attest", padded("{}", limit+1))
		body := wantProblemResponse(t, resp, kbs.ProblemAttestationError, http.StatusRequestEntityTooLarge)
		if !strings.Contains(body, overLimit) {
			t.Errorf("response %s does not contain %q", body, overLimit)
		}
		line := logs.waitForLine(t, "kbs attest rejected", resp.Header.Get("X-Request-Id"))
		if reason, _ := line["error"].(string); !strings.Contains(reason, overLimit) {
			t.Errorf("log line error %q does not contain %q", reason, overLimit)
		}
	})
}
