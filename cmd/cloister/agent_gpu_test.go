package main

import (
	"strings"
	"testing"
)

// flagErrorCase is a command line that must exit with a usage error whose
// message contains want.
type flagErrorCase struct {
	name string
	args []string
	want string
}

// checkAgentFlagErrors runs the agent with the flags of each case and checks
// the usage error that it returns.
func checkAgentFlagErrors(t *testing.T, tests []flagErrorCase) {
	t.Helper()
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

func TestAgentEmulatedGPUsFlags(t *testing.T) {
	tests := []flagErrorCase{
		{"without emulated", []string{"--emulated-gpus", "1", "--kbs", "http://127.0.0.1:8080"}, "--emulated-gpus needs --emulated"},
		{"without kbs", []string{"--emulated", "--emulated-gpus", "1"}, "--emulated-gpus needs --kbs"},
		{"too many", []string{"--emulated", "--emulated-gpus", "9", "--kbs", "http://127.0.0.1:8080"}, "use 1 to 8"},
		{"negative", []string{"--emulated", "--emulated-gpus", "-1", "--kbs", "http://127.0.0.1:8080"}, "use 1 to 8"},
	}
	checkAgentFlagErrors(t, tests)
}
