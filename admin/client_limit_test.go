package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A response cut off at maxResponseBytes is reported as over the limit,
// naming the limit and the endpoint, not as a JSON decode error.
func TestClientResponseOverLimit(t *testing.T) {
	tests := []struct {
		name   string
		status int
		size   int
	}{
		{"success one byte over", http.StatusOK, maxResponseBytes + 1},
		{"success far over", http.StatusOK, maxResponseBytes + 1<<20},
		{"problem one byte over", http.StatusInternalServerError, maxResponseBytes + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				// A JSON array of zeros that the limit cuts off.
				_, _ = io.WriteString(w, "[")
				_, _ = io.Copy(w, io.LimitReader(zeroCommas{}, int64(tt.size-1)))
			}))
			defer srv.Close()

			c := &Client{BaseURL: srv.URL, APIKey: "test-key"}
			_, err := c.ListSecrets(context.Background(), "")
			if err == nil {
				t.Fatal("ListSecrets accepted a response over the limit")
			}
			for _, want := range []string{
				fmt.Sprintf("exceeds the limit of %d bytes (64 MiB)", maxResponseBytes),
				"GET " + srv.URL + PathPrefix + "secrets",
				fmt.Sprintf("status %d", tt.status),
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "decode") {
				t.Errorf("error %q reports a decode failure", err)
			}
		})
	}
}

// zeroCommas reads as an endless "0,0,0,...".
type zeroCommas struct{}

func (zeroCommas) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "0,"[i%2]
	}
	return len(p), nil
}
