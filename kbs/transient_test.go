package kbs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/tee/snp"
)

// statusServer starts a loopback server that responds status to every
// request.
func statusServer(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, http.StatusText(status), status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// closingServer starts a loopback listener that closes each connection
// without a response, as a service that stops does.
func closingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

// slowServer starts a loopback server that responds after the client's
// timeout.
func slowServer(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv.URL
}

func TestIsTransientClientErrors(t *testing.T) {
	untrusted := httptest.NewUnstartedServer(http.NotFoundHandler())
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0)
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)
	tlsToPlain := "https://" + statusServer(t, http.StatusOK)[len("http://"):]
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		return "http://" + ln.Addr().String()
	}()

	tests := []struct {
		name string
		url  string
		want bool
	}{
		{"connection refused", closed, true},
		{"connection closed without response", closingServer(t), true},
		{"client timeout", slowServer(t), true},
		{"503 Service Unavailable", statusServer(t, http.StatusServiceUnavailable), true},
		{"502 Bad Gateway", statusServer(t, http.StatusBadGateway), true},
		{"429 Too Many Requests", statusServer(t, http.StatusTooManyRequests), true},
		{"400 Bad Request", statusServer(t, http.StatusBadRequest), false},
		{"KBS problem", attestRejectingServer(t, "").URL, false},
		{"untrusted certificate", untrusted.URL, false},
		{"TLS to a plain HTTP server", tlsToPlain, false},
	}
	em, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{URL: tt.url, Attester: em, TEE: "snp", HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}}
			_, err := c.Attest(context.Background())
			if err == nil {
				t.Fatal("Attest succeeded, want an error")
			}

			if got := IsTransient(err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v, want %v", err, got, tt.want)
			}
		})
	}
}

func TestIsTransientErrorValues(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("invalid response JSON"), false},
		{"host not found", &net.DNSError{Err: "no such host", Name: "kbs.example", IsNotFound: true}, false},
		{"DNS timeout", &net.DNSError{Err: "i/o timeout", Name: "kbs.example", IsTimeout: true}, true},
		{"unknown authority", fmt.Errorf("kbs auth: %w", x509.UnknownAuthorityError{}), false},
		{"client certificate rejected", &net.OpError{Op: "remote error", Net: "tcp", Err: tls.AlertError(42)}, false},
		{"504 behind a request ID", &RequestIDError{Err: &StatusError{StatusCode: http.StatusGatewayTimeout, Status: "504 Gateway Timeout"}, RequestID: "r1"}, true},
		{"500 Internal Server Error", &StatusError{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
