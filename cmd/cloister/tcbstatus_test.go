package main

import (
	"strings"
	"testing"
)

// NoMatchingTcbLevel is never accepted, so each flag that lists accepted
// TCB statuses rejects it with a usage error that names the flag, the
// value and the reason.
func TestTCBStatusFlagRejectsNoMatchingLevel(t *testing.T) {
	tests := []struct {
		name string
		flag string
		args []string
	}{
		{"verify", "--tcb-status", []string{"verify", "--tcb-status", "UpToDate", "--tcb-status", "NoMatchingTcbLevel", "evidence.bin"}},
		{"connect", "--tcb-status", []string{"connect", "--measurement", strings.Repeat("00", 48), "--tcb-status", "NoMatchingTcbLevel", "https://127.0.0.1:1/"}},
		{"serve", "--tcb-status", []string{"serve", "--data-dir", t.TempDir(), "--tcb-status", "NoMatchingTcbLevel"}},
		{"agent", "--client-tcb-status", []string{"agent", "--emulated", "--upstream", "127.0.0.1:9000", "--verify-clients",
			"--client-measurement", strings.Repeat("00", 48), "--client-tcb-status", "NoMatchingTcbLevel", "--", "true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCloister(t, tc.args...)
			if code := exitCode(t, err); code != exitUsage {
				t.Fatalf("exit code %d (%v), want %d", code, err, exitUsage)
			}
			for _, want := range []string{"invalid " + tc.flag + ":", "NoMatchingTcbLevel", "no TCB level of Intel's TCB Info matches the platform", "its TCB is unknown"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// A misspelt status would match no evidence, so the flags reject it too.
func TestTCBStatusFlagRejectsUnknownName(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "--tcb-status", "uptodate", "evidence.bin"},
		{"serve", "--data-dir", t.TempDir(), "--tcb-status", "OutOfDte"},
	} {
		t.Run(args[0], func(t *testing.T) {
			_, err := runCloister(t, args...)
			if code := exitCode(t, err); code != exitUsage {
				t.Fatalf("exit code %d (%v), expected %d", code, err, exitUsage)
			}
			if !strings.Contains(err.Error(), "is unknown, so it would match no evidence") {
				t.Errorf("error %q does not name the unknown status", err)
			}
		})
	}
}
