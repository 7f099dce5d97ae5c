package kbs

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An /auth body over its limit, MaxAuthBodySize or a smaller
// MaxBodySize, gets Trustee's AttestationError body with status 413, and
// its detail names the limit in bytes and the fix.
func TestAuthBodyOverLimit(t *testing.T) {
	tests := []struct {
		name        string
		maxBodySize int64
		wantLimit   int
	}{
		{"default limit", 0, MaxAuthBodySize},
		{"smaller server limit", 1024, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&Server{MaxBodySize: tt.maxBodySize, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer srv.Close()

			body := `{"version":"` + ProtocolVersion + `","tee":"snp","extra-params":"` + strings.Repeat("a", tt.wantLimit) + `"}`
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/kbs/v0/auth", bytes.NewReader([]byte(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, p := doProblem(t, srv, req)
			if p.Status != http.StatusRequestEntityTooLarge {
				t.Errorf("status = %d, want 413", p.Status)
			}
			if p.Variant() != ProblemAttestationError {
				t.Errorf("problem type = %q, want %s", p.Type, ProblemAttestationError)
			}
			if want := fmt.Sprintf("exceeds the limit of %d bytes", tt.wantLimit); !strings.Contains(p.Detail, want) {
				t.Errorf("detail %q does not name the limit: want %q", p.Detail, want)
			}
			if !strings.Contains(p.Detail, "send a smaller body") {
				t.Errorf("detail %q does not name the fix", p.Detail)
			}
			if cookie := resp.Header.Get("Set-Cookie"); cookie != "" {
				t.Errorf("rejected /auth set a cookie: %q", cookie)
			}
		})
	}
}
