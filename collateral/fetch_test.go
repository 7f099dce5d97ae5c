package collateral

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestFetchRetriesTransientStatusOnly(t *testing.T) {
	const retries = 3
	tests := []struct {
		status   int
		attempts int64
	}{
		{http.StatusTooManyRequests, retries + 1},
		{http.StatusInternalServerError, retries + 1},
		{http.StatusBadGateway, retries + 1},
		{http.StatusServiceUnavailable, retries + 1},
		{http.StatusGatewayTimeout, retries + 1},
		{http.StatusNotImplemented, 1},
		{http.StatusHTTPVersionNotSupported, 1},
		{http.StatusInsufficientStorage, 1},
		{http.StatusNetworkAuthenticationRequired, 1},
		{599, 1},
		{http.StatusBadRequest, 1},
		{http.StatusForbidden, 1},
		{http.StatusNotFound, 1},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				http.Error(w, "failure", tt.status)
			}))
			defer srv.Close()
			f := newHTTPFetcher(FetcherOptions{Retries: retries, Backoff: time.Millisecond, RequestsPerSecond: 1000})

			_, err := f.get(context.Background(), srv.URL)
			if err == nil {
				t.Fatal("fetch succeeded, want an error")
			}
			var ue *UpstreamError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is not an *UpstreamError", err)
			}
			if ue.Status != tt.status {
				t.Errorf("error status = %d, want %d", ue.Status, tt.status)
			}
			if got := requests.Load(); got != tt.attempts {
				t.Errorf("requests = %d, want %d", got, tt.attempts)
			}
		})
	}
}

func TestFetchRetriesNetworkError(t *testing.T) {
	// A listener that accepts and closes every connection makes each
	// attempt fail without an HTTP response.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var connections atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			connections.Add(1)
			conn.Close()
		}
	}()
	f := newHTTPFetcher(FetcherOptions{Retries: 2, Backoff: time.Millisecond, RequestsPerSecond: 1000})

	_, err = f.get(context.Background(), "http://"+ln.Addr().String()+"/item")
	if err == nil {
		t.Fatal("fetch succeeded, want an error")
	}
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Status != 0 {
		t.Errorf("error = %v, want an *UpstreamError without a status", err)
	}
	// The HTTP client may retry a request on a connection that closed
	// before any response, so each attempt opens at least one.
	if got := connections.Load(); got < 3 {
		t.Errorf("connections = %d, want at least 3 for 1 attempt and 2 retries", got)
	}
}

func TestFetchRetryAfterThenSuccess(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	f := newHTTPFetcher(FetcherOptions{Retries: 3, Backoff: time.Millisecond, RequestsPerSecond: 1000})

	started := time.Now()
	resp, err := f.get(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.body) != "ok" {
		t.Errorf("body = %q, want ok", resp.body)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("requests = %d, want 2", got)
	}
	// The Retry-After of 1 second replaces the 1 ms backoff.
	if elapsed := time.Since(started); elapsed < time.Second {
		t.Errorf("retry came after %s, want at least the 1s of Retry-After", elapsed)
	}
}
