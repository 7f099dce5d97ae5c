package main

import (
	"strings"
	"testing"
	"time"
)

func TestServeRejectsCommitDelayOutOfRange(t *testing.T) {
	for _, delay := range []string{"-1ms", "101ms", "1h"} {
		_, err := runCloister(t, "serve", "--data-dir", t.TempDir(), "--commit-delay", delay)
		if exitCode(t, err) != exitUsage {
			t.Errorf("--commit-delay %s: %v, want a usage error", delay, err)
			continue
		}
		if !strings.Contains(err.Error(), "--commit-delay") {
			t.Errorf("--commit-delay %s: error %q does not name the flag", delay, err)
		}
	}
}

func TestServerCommitDelay(t *testing.T) {
	if got := serverCommitDelay(0); got >= 0 {
		t.Errorf("serverCommitDelay(0) = %v, want a negative value, which turns the delay off", got)
	}
	if got := serverCommitDelay(2 * time.Millisecond); got != 2*time.Millisecond {
		t.Errorf("serverCommitDelay(2ms) = %v, want 2ms", got)
	}
}
