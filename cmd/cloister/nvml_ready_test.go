package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
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

// fakeGPUs records when their ready state is set, as the number of
// broker calls before it.
type fakeGPUs struct {
	broker *fakeBroker
	err    error
	setAt  []int
}

func (g *fakeGPUs) SetReady() (bool, error) {
	g.setAt = append(g.setAt, g.broker.calls)
	return false, g.err
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
