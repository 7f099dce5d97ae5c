package kbs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
)

// StatusError is the error of a KBS response whose HTTP status is neither
// 200 nor a KBS problem (401 or 404), such as a 503 from a load balancer
// in front of the service.
type StatusError struct {
	StatusCode int
	// Status is the status line's text, such as "503 Service Unavailable".
	Status string
	// Body is the first 512 bytes at most of the response body.
	Body []byte
}

// Error returns the status and up to 200 bytes of the body, quoted.
func (e *StatusError) Error() string {
	return fmt.Sprintf("unexpected HTTP status %s: %.200q", e.Status, e.Body)
}

// IsTransient reports whether err, from a Client call, may pass when the
// same request is sent again later. That is the case when the service could
// not be reached, the connection broke, the request timed out, or the
// response was 429, 500, 502, 503 or 504. A KBS problem (such as a policy
// denial), an invalid response, a failed TLS handshake and a host name that
// does not resolve are not transient, because another try fails the same
// way.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var status *StatusError
	if errors.As(err, &status) {
		switch status.StatusCode {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	if untrustedServer(err) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		serverClosedIdle(err)
}

// serverClosedIdle reports whether err is net/http's error for a
// connection that the server closed before the client's request was on
// it, which is as transient as a connection closed with io.EOF. net/http
// keeps that error unexported (errServerClosedIdle in transport.go of Go
// 1.26), so only its text identifies it.
func serverClosedIdle(err error) bool {
	var urlErr *url.Error
	return errors.As(err, &urlErr) && urlErr.Err != nil && urlErr.Err.Error() == "http: server closed idle connection"
}

// untrustedServer reports whether err is a TLS failure that another try
// cannot fix. These are a certificate the client does not trust, a TLS
// alert from the server, such as a rejected client certificate, and a
// server that does not speak TLS.
func untrustedServer(err error) bool {
	var verifyErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	return errors.As(err, &verifyErr) || errors.As(err, &unknownAuthority) || errors.As(err, &hostnameErr) ||
		errors.As(err, &invalidErr) || errors.As(err, &alert) || errors.As(err, &recordErr)
}
