package kbs

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An /auth body over MaxBodySize gets Trustee's AttestationError with
// status 401, and its detail names the limit in bytes and the fix.
func TestAuthBodyOverLimit(t *testing.T) {
	srv := httptest.NewServer(&Server{MaxBodySize: 1024, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer srv.Close()

	body := `{"version":"` + ProtocolVersion + `","tee":"snp","extra-params":"` + strings.Repeat("a", 2048) + `"}`
	resp, err := srv.Client().Post(srv.URL+"/kbs/v0/auth", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	p, err := ParseProblem(resp.StatusCode, raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", p.Status)
	}
	if p.Variant() != ProblemAttestationError {
		t.Errorf("problem type = %q, want %s", p.Type, ProblemAttestationError)
	}
	if !strings.Contains(p.Detail, "exceeds the limit of 1024 bytes") {
		t.Errorf("detail %q does not name the limit of 1024 bytes", p.Detail)
	}
	if !strings.Contains(p.Detail, "send a smaller body") {
		t.Errorf("detail %q does not name the fix", p.Detail)
	}
	if cookie := resp.Header.Get("Set-Cookie"); cookie != "" {
		t.Errorf("rejected /auth set a cookie: %q", cookie)
	}
}
