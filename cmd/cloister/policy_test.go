package main

import (
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/server"
	"github.com/cloister-dev/cloister/store"
)

// The built-in policies print as modules that the service accepts as they
// are, so that an operator can start from them.
func TestPolicyDefaultStorable(t *testing.T) {
	tests := []struct {
		args []string
		kind store.PolicyKind
	}{
		{[]string{"policy", "default", "snp"}, store.PolicyAttestation},
		{[]string{"policy", "default", "tdx"}, store.PolicyAttestation},
		{[]string{"policy", "default", "--kind", "resource", "default"}, store.PolicyResource},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			out, err := runCloister(t, tt.args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.HasPrefix(out, "package ") {
				t.Errorf("output does not start with a package line:\n%.200s", out)
			}
			if err := server.ValidatePolicy(tt.kind, "printed", out); err != nil {
				t.Errorf("printed module rejected: %v", err)
			}
		})
	}
	if _, err := runCloister(t, "policy", "default", "--kind", "resource", "other"); exitCode(t, err) != exitUsage {
		t.Errorf("unknown resource policy name: %v, want a usage error", err)
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := runCloister(t, "version")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "cloister ") || !strings.Contains(out, "go1.") {
		t.Errorf("version output %q lacks the name or the Go version", out)
	}
}
