package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/cloister-dev/cloister/kbs"
)

// fakeBroker is a secret source that releases each path's secret unless
// it rejects all, and counts its calls.
type fakeBroker struct {
	reject  error
	calls   int
	secrets [][]byte
}

func (b *fakeBroker) Resource(_ context.Context, path string) ([]byte, error) {
	b.calls++
	if b.reject != nil {
		return nil, b.reject
	}
	secret := []byte("secret of " + path)
	b.secrets = append(b.secrets, secret)
	return secret, nil
}

// fakeGPUs records when their ready state is set and cleared, as the
// number of broker calls before it.
type fakeGPUs struct {
	broker *fakeBroker
	err    error
	setAt  []int
	// ready is the state that SetNotReady finds.
	ready bool
	// clearErr is the error that SetNotReady returns.
	clearErr  error
	clearedAt []int
}

func (g *fakeGPUs) SetReady() (bool, error) {
	g.setAt = append(g.setAt, g.broker.calls)
	if g.err == nil {
		g.ready = true
	}
	return false, g.err
}

func (g *fakeGPUs) SetNotReady() (bool, error) {
	g.clearedAt = append(g.clearedAt, g.broker.calls)
	wasReady := g.ready
	if g.clearErr == nil {
		g.ready = false
	}
	return wasReady, g.clearErr
}

func newReadySource(reject, setErr error) (*gpuReadySource, *fakeBroker, *fakeGPUs) {
	b := &fakeBroker{reject: reject}
	g := &fakeGPUs{broker: b, err: setErr}
	return &gpuReadySource{source: b, gpus: g, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, b, g
}

func TestGPUReadySourceSetsOnce(t *testing.T) {
	s, b, g := newReadySource(nil, nil)
	for _, path := range []string{"default/key/a", "default/key/b", "default/key/a"} {
		secret, err := s.Resource(context.Background(), path)
		if err != nil {
			t.Fatalf("Resource %s: %v", path, err)
		}
		if string(secret) != "secret of "+path {
			t.Errorf("Resource %s returned %q", path, secret)
		}
	}
	if len(g.setAt) != 1 {
		t.Fatalf("ready state set %d times, expected once", len(g.setAt))
	}
	if g.setAt[0] != 1 {
		t.Errorf("ready state set after %d broker calls, expected after the first", g.setAt[0])
	}
	if b.calls != 3 {
		t.Errorf("broker called %d times, expected 3", b.calls)
	}
}

func TestGPUReadySourceBrokerRejects(t *testing.T) {
	reject := errors.New("kbs resource default/key/a: policy denied")
	s, _, g := newReadySource(reject, nil)
	for range 2 {
		secret, err := s.Resource(context.Background(), "default/key/a")
		if !errors.Is(err, reject) {
			t.Errorf("error %v, expected the broker's", err)
		}
		if secret != nil {
			t.Errorf("secret %q returned with an error", secret)
		}
	}
	if len(g.setAt) != 0 {
		t.Errorf("ready state set %d times after the key broker rejected, expected never", len(g.setAt))
	}
}

func TestGPUReadySourceSetFails(t *testing.T) {
	setErr := errors.New("nvgpu: nvmlSystemSetConfComputeGpusReadyState failed: ERROR_NO_PERMISSION (NVML return code 4)")
	s, b, g := newReadySource(nil, setErr)
	secret, err := s.Resource(context.Background(), "default/key/a")
	if !errors.Is(err, setErr) {
		t.Errorf("error %v, expected the NVML error", err)
	}
	for _, want := range []string{"--nvidia-gpus", "released default/key/a", "setting the GPUs' ready state failed", "nvmlSystemSetConfComputeGpusReadyState failed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, expected one containing %q", err, want)
		}
	}
	if secret != nil {
		t.Errorf("secret %q returned with an error", secret)
	}
	if !bytes.Equal(b.secrets[0], make([]byte, len(b.secrets[0]))) {
		t.Errorf("released secret %q not zeroed after the failure", b.secrets[0])
	}

	// The next release tries to set the state again.
	g.err = nil
	if _, err := s.Resource(context.Background(), "default/key/a"); err != nil {
		t.Fatalf("Resource after the failure: %v", err)
	}
	if len(g.setAt) != 2 {
		t.Errorf("ready state set %d times, expected 2", len(g.setAt))
	}
}

// kbsProblem returns the error of kbs.Client.Resource for a KBS problem of
// the variant, wrapped as the client wraps it.
func kbsProblem(variant string) error {
	p := kbs.NewProblem(variant, "rejected")
	return fmt.Errorf("kbs resource default/key/a: %w", &kbs.RequestIDError{Err: p, RequestID: "req-1"})
}

func TestGPUReadySourceRejectionClearsReady(t *testing.T) {
	tests := []struct {
		name   string
		reject error
		// clears is whether the source sets the GPUs not ready.
		clears bool
	}{
		{name: "policy deny", reject: kbsProblem(kbs.ProblemPolicyDeny), clears: true},
		{name: "attestation error", reject: fmt.Errorf("kbs attest: %w", kbs.NewProblem(kbs.ProblemAttestationError, "attestation failed")), clears: true},
		{name: "token verifier error", reject: kbsProblem(kbs.ProblemTokenVerifierError)},
		{name: "token not found", reject: kbsProblem(kbs.ProblemTokenNotFound)},
		{name: "policy engine error", reject: kbsProblem(kbs.ProblemPolicyEngineError)},
		{name: "problem of another service", reject: &kbs.Problem{Type: "https://example.com/errors/PolicyDeny", Status: 401}},
		{name: "service unavailable", reject: &kbs.StatusError{StatusCode: 503, Status: "503 Service Unavailable"}},
		{name: "connection refused", reject: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
		{name: "timeout", reject: fmt.Errorf("fetching default/key/a timed out: %w", context.DeadlineExceeded)},
		{name: "plain error", reject: errors.New("kbs resource default/key/a: policy denied")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, b, g := newReadySource(nil, nil)
			if _, err := s.Resource(context.Background(), "default/key/a"); err != nil {
				t.Fatalf("first Resource: %v", err)
			}
			b.reject = tc.reject
			secret, err := s.Resource(context.Background(), "default/key/a")
			if !errors.Is(err, tc.reject) {
				t.Errorf("error %v, expected the broker's", err)
			}
			if secret != nil {
				t.Errorf("secret %q returned with an error", secret)
			}
			if !tc.clears {
				if len(g.clearedAt) != 0 {
					t.Errorf("GPUs set not ready %d times, expected never", len(g.clearedAt))
				}
				if !g.ready {
					t.Error("GPUs not ready, expected them still ready")
				}
				return
			}
			if len(g.clearedAt) != 1 {
				t.Fatalf("GPUs set not ready %d times, expected once", len(g.clearedAt))
			}
			if g.ready {
				t.Error("GPUs still ready after the rejection")
			}

			// The next release tries to set them ready again. A real
			// driver from 550.40.07 on rejects that until a GPU reset.
			b.reject = nil
			if _, err := s.Resource(context.Background(), "default/key/a"); err != nil {
				t.Fatalf("Resource after the rejection: %v", err)
			}
			if len(g.setAt) != 2 {
				t.Errorf("ready state set %d times, expected 2", len(g.setAt))
			}
			if !g.ready {
				t.Error("GPUs not ready after a release")
			}
		})
	}
}

func TestGPUReadySourceRejectionLogs(t *testing.T) {
	var logged bytes.Buffer
	s, b, g := newReadySource(kbsProblem(kbs.ProblemPolicyDeny), nil)
	s.log = slog.New(slog.NewTextHandler(&logged, nil))
	g.ready = true
	if _, err := s.Resource(context.Background(), "default/key/a"); err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"level=WARN", "set not ready", "resource=default/key/a", "PolicyDeny"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log %q, expected one containing %q", logged.String(), want)
		}
	}

	// GPUs that are not ready are left alone and nothing is logged.
	logged.Reset()
	if _, err := s.Resource(context.Background(), "default/key/a"); err == nil {
		t.Fatal("no error")
	}
	if logged.Len() != 0 {
		t.Errorf("log %q for GPUs that were not ready", logged.String())
	}
	if b.calls != 2 {
		t.Errorf("broker called %d times, expected 2", b.calls)
	}
}

func TestGPUReadySourceClearFails(t *testing.T) {
	reject := kbsProblem(kbs.ProblemAttestationError)
	clearErr := errors.New("nvgpu: nvmlSystemSetConfComputeGpusReadyState failed: ERROR_NO_PERMISSION (NVML return code 4)")
	s, _, g := newReadySource(reject, nil)
	g.ready, g.clearErr = true, clearErr
	_, err := s.Resource(context.Background(), "default/key/a")
	if !errors.Is(err, reject) {
		t.Errorf("error %v, expected the broker's", err)
	}
	if !errors.Is(err, clearErr) {
		t.Errorf("error %v, expected the NVML error", err)
	}
	for _, want := range []string{"AttestationError", "setting the GPUs not ready failed", "default/key/a"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, expected one containing %q", err, want)
		}
	}
}
