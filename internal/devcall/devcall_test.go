package devcall

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDoReturnsResult(t *testing.T) {
	var s Serial
	got, err := Do(context.Background(), &s, "test", func() (string, error) { return "report", nil })
	if err != nil {
		t.Fatal(err)
	}
	if got != "report" {
		t.Errorf("result %q, want %q", got, "report")
	}
	wantErr := errors.New("device failed")
	if _, err := Do(context.Background(), &s, "test", func() (int, error) { return 0, wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("error %v, want %v", err, wantErr)
	}
}

func TestDoAbandonsBlockedRequest(t *testing.T) {
	var s Serial
	unblock := make(chan struct{})
	defer close(unblock)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Do(ctx, &s, "test", func() (int, error) {
		<-unblock
		return 1, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "test: ") {
		t.Errorf("error %q does not start with the name", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Do returned after %v, want soon after the deadline", elapsed)
	}
}

func TestDoRunsOneRequestAtATime(t *testing.T) {
	var s Serial
	unblock := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var running atomic.Int32
	if _, err := Do(ctx, &s, "test", func() (int, error) {
		running.Add(1)
		<-unblock
		running.Add(-1)
		return 0, nil
	}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}

	// The abandoned request still holds s, so a second request waits
	// for it, and gives up with its own context.
	waitCtx, waitCancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer waitCancel()
	ran := false
	if _, err := Do(waitCtx, &s, "test", func() (int, error) { ran = true; return 0, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded while the first request runs", err)
	}
	if ran {
		t.Error("a second request ran while the first still held the device")
	}

	close(unblock)
	got, err := Do(context.Background(), &s, "test", func() (int32, error) { return running.Load(), nil })
	if err != nil {
		t.Fatal(err)
	}
	if got != 0 {
		t.Errorf("%d requests running beside this one, want 0", got)
	}
}

func TestDoCanceledBeforeStart(t *testing.T) {
	var s Serial
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if _, err := Do(ctx, &s, "test", func() (int, error) { ran = true; return 0, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if ran {
		t.Error("the request ran although its context had ended")
	}
}
