package main

import (
	"strings"
	"testing"
)

func TestAgentEmulatedGPUsFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"without emulated", []string{"--emulated-gpus", "1", "--kbs", "http://127.0.0.1:8080"}, "--emulated-gpus needs --emulated"},
		{"without kbs", []string{"--emulated", "--emulated-gpus", "1"}, "--emulated-gpus needs --kbs"},
		{"too many", []string{"--emulated", "--emulated-gpus", "9", "--kbs", "http://127.0.0.1:8080"}, "use 1 to 8"},
		{"negative", []string{"--emulated", "--emulated-gpus", "-1", "--kbs", "http://127.0.0.1:8080"}, "use 1 to 8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"agent", "--listen", ""}, tc.args...), "--", "true")
			_, err := runCloister(t, args...)
			if code := exitCode(t, err); code != exitUsage {
				t.Errorf("exit code %d (%v), expected %d", code, err, exitUsage)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, expected one containing %q", err, tc.want)
			}
		})
	}
}
