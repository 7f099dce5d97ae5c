package collateral

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestFetchRedirects(t *testing.T) {
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write([]byte("crl"))
	}))
	defer plain.Close()
	var tlsHits atomic.Int64
	var tlsURL string
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tlsHits.Add(1)
		switch r.URL.Path {
		case "/downgrade":
			http.Redirect(w, r, plain.URL+"/crl", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, tlsURL+"/loop", http.StatusFound)
		case "/same":
			http.Redirect(w, r, tlsURL+"/crl", http.StatusFound)
		default:
			w.Header().Set("Content-Type", "application/pkix-crl")
			w.Write([]byte("crl"))
		}
	}))
	defer secure.Close()
	tlsURL = secure.URL

	tests := []struct {
		path    string
		wantErr string
	}{
		{"/same", ""},
		{"/downgrade", "leaves HTTPS"},
		{"/loop", "stopped after 5 redirects"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			plainHits.Store(0)
			tlsHits.Store(0)
			f := newHTTPFetcher(FetcherOptions{Client: secure.Client(), Retries: 2, Backoff: 1, RequestsPerSecond: 1000, Burst: 100})
			_, err := f.get(t.Context(), secure.URL+tt.path)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("redirect within HTTPS failed: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if n := plainHits.Load(); n != 0 {
				t.Errorf("plain HTTP server received %d requests", n)
			}
			if n := tlsHits.Load(); n > 6 {
				t.Errorf("rejected redirect was retried: %d requests", n)
			}
		})
	}
}
