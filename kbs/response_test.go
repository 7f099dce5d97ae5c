package kbs

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// JSON responses carry a Content-Length and are not chunked, also when the
// body is larger than net/http's 2048-byte response buffer, as an /attest
// token is.
func TestJSONResponseFraming(t *testing.T) {
	large := AttestationToken{Token: strings.Repeat("a", 6000)}
	tests := []struct {
		name   string
		write  func(w http.ResponseWriter)
		status int
	}{
		{"small body", func(w http.ResponseWriter) { writeJSON(w, Challenge{Nonce: "n"}) }, http.StatusOK},
		{"large body", func(w http.ResponseWriter) { writeJSON(w, large) }, http.StatusOK},
		{"problem", func(w http.ResponseWriter) {
			NewProblem(ProblemTokenNotFound, "Attestation Token not found").Write(w)
		}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tt.write(w) }))
			defer srv.Close()

			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}

			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length = %d, want the body length %d", resp.ContentLength, len(body))
			}
			if len(resp.TransferEncoding) != 0 {
				t.Errorf("Transfer-Encoding = %v, want none", resp.TransferEncoding)
			}
		})
	}
}
