package kbs

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An /auth rejection that names the version or tee the client sent cuts
// that value, so that a value of tens of kilobytes, within MaxAuthBodySize,
// is not echoed into the response and the log line. A short value is still named as sent, which keeps
// the version-mismatch phrase that guests look for.
func TestAuthRejectionCutsEchoedValues(t *testing.T) {
	long := strings.Repeat("9", MaxAuthBodySize-1024)
	tests := []struct {
		name, body, wantDetail string
	}{
		{"long version", `{"version":"` + long + `","tee":"snp","extra-params":""}`,
			"KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 999"},
		{"long tee", `{"version":"0.4.0","tee":"` + long + `","extra-params":""}`, `unknown tee "999`},
		{"short version", `{"version":"0.3.0","tee":"snp","extra-params":""}`,
			"KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.3.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &Server{Store: openTestStore(t), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/kbs/v0/auth", strings.NewReader(tt.body)))
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", w.Code)
			}
			var p Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("detail %.300q does not contain %q", p.Detail, tt.wantDetail)
			}
			if len(p.Detail) > 1024 {
				t.Errorf("detail is %d bytes, want at most 1024", len(p.Detail))
			}
			if logs.Len() > 2048 {
				t.Errorf("log output is %d bytes, want at most 2048", logs.Len())
			}
		})
	}
}

// The 404 bodies name the plugin or the path from the request, cut to
// maxEchoedValue bytes.
func TestNotFoundCutsEchoedPath(t *testing.T) {
	s := &Server{Store: openTestStore(t), Logger: slog.New(slog.DiscardHandler)}
	long := strings.Repeat("p", 100<<10)
	for _, target := range []string{"/kbs/v0/" + long + "/a", "/other/" + long} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		if w.Code != http.StatusNotFound {
			t.Errorf("%.40s: status = %d, want 404", target, w.Code)
		}
		var p Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Detail, "ppp") {
			t.Errorf("%.40s: detail %.100q does not name the path", target, p.Detail)
		}
		if len(p.Detail) > 1024 {
			t.Errorf("%.40s: detail is %d bytes, want at most 1024", target, len(p.Detail))
		}
	}
}
