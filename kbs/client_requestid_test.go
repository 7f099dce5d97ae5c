package kbs

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/tee/snp"
)

// attestRejectingServer starts a loopback KBS stub that issues a challenge
// on /auth and rejects every /attest with Trustee's fixed detail. It sets
// the X-Request-Id response header to requestID unless that is empty.
func attestRejectingServer(t *testing.T, requestID string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requestID != "" {
			w.Header().Set("X-Request-Id", requestID)
		}
		switch r.URL.Path {
		case "/kbs/v0/auth":
			writeStubChallenge(w)
		case "/kbs/v0/attest":
			NewProblem(ProblemAttestationError, attestFailedDetail).Write(w)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// attestError runs Client.Attest against srv with an emulated SEV-SNP
// attester and returns its error.
func attestError(t *testing.T, srv *httptest.Server) error {
	t.Helper()
	em, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{URL: srv.URL, Attester: em, TEE: "snp"}
	_, err = c.Attest(context.Background())
	if err == nil {
		t.Fatal("Attest succeeded against a server that rejects every /attest")
	}
	return err
}

// wantAttestProblem checks that errors.As finds the /attest problem in err.
func wantAttestProblem(t *testing.T, err error) {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("errors.As finds no *Problem in %v", err)
	}
	if p.Variant() != ProblemAttestationError {
		t.Errorf("problem variant = %s, want %s", p.Variant(), ProblemAttestationError)
	}
	if p.Detail != attestFailedDetail {
		t.Errorf("problem detail = %q, want %q", p.Detail, attestFailedDetail)
	}
	if p.Status != http.StatusUnauthorized {
		t.Errorf("problem status = %d, want %d", p.Status, http.StatusUnauthorized)
	}
}

func TestClientErrorRequestID(t *testing.T) {
	err := attestError(t, attestRejectingServer(t, "abc"))

	want := attestFailedDetail + " (request ID abc; the service log gives the cause under this ID)"
	if !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error = %q, want it to end with %q", err, want)
	}
	if !strings.HasPrefix(err.Error(), "kbs attest: ") {
		t.Errorf("error = %q, want it to start with %q", err, "kbs attest: ")
	}
	wantAttestProblem(t, err)

	var rid *RequestIDError
	if !errors.As(err, &rid) {
		t.Fatalf("errors.As finds no *RequestIDError in %v", err)
	}
	if rid.RequestID != "abc" {
		t.Errorf("RequestID = %q, want %q", rid.RequestID, "abc")
	}
}

func TestClientErrorWithoutRequestID(t *testing.T) {
	err := attestError(t, attestRejectingServer(t, ""))

	if strings.Contains(err.Error(), "request ID") {
		t.Errorf("error = %q, want no request ID when the response has no X-Request-Id", err)
	}
	if !strings.HasSuffix(err.Error(), attestFailedDetail) {
		t.Errorf("error = %q, want it to end with %q", err, attestFailedDetail)
	}
	wantAttestProblem(t, err)

	var rid *RequestIDError
	if errors.As(err, &rid) {
		t.Errorf("errors.As finds a *RequestIDError with ID %q, want none", rid.RequestID)
	}
}

// A request ID outside the characters that the service generates is quoted
// and cut, because the header comes from the network.
func TestClientErrorRequestIDQuoted(t *testing.T) {
	err := attestError(t, attestRejectingServer(t, "a b"+strings.Repeat("x", 100)))

	want := `(request ID "a b` + strings.Repeat("x", MaxRequestIDLength-3) + `"; `
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
	wantAttestProblem(t, err)
}

// A resource denial keeps the request ID and the *Problem that Resource's
// retry decision reads.
func TestClientResourceErrorRequestID(t *testing.T) {
	em, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "r-42")
		switch r.URL.Path {
		case "/kbs/v0/auth":
			writeStubChallenge(w)
		case "/kbs/v0/attest":
			w.Write([]byte(`{"token":"t"}`))
		default:
			NewProblem(ProblemPolicyDeny, "Access denied by policy").Write(w)
		}
	}))
	defer srv.Close()

	c := &Client{URL: srv.URL, Attester: em, TEE: "snp"}
	_, err = c.Resource(context.Background(), "default/db/password")
	if err == nil {
		t.Fatal("Resource succeeded against a server that denies every resource")
	}

	want := "Access denied by policy (request ID r-42; the service log gives the cause under this ID)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("errors.As finds no *Problem in %v", err)
	}
	if p.Variant() != ProblemPolicyDeny {
		t.Errorf("problem variant = %s, want %s", p.Variant(), ProblemPolicyDeny)
	}
}

func TestIsRequestID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"abc-123_X.y", true},
		{strings.Repeat("a", MaxRequestIDLength), true},
		{"", false},
		{strings.Repeat("a", MaxRequestIDLength+1), false},
		{"a b", false},
		{"a\nb", false},
		{"é", false},
		{"a/b", false},
	}
	for _, tt := range tests {
		if got := IsRequestID(tt.id); got != tt.want {
			t.Errorf("IsRequestID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
