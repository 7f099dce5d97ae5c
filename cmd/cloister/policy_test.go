package main

import (
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/server"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/composite"
)

// The built-in policies print as modules that the service accepts as they
// are, so that an operator can start from them.
func TestPolicyDefaultStorable(t *testing.T) {
	type test struct {
		args []string
		kind store.PolicyKind
	}
	tests := []test{{[]string{"policy", "default", "--kind", "resource", "default"}, store.PolicyResource}}
	for _, tee := range policy.AttestationTEEs() {
		tests = append(tests, test{[]string{"policy", "default", string(tee)}, store.PolicyAttestation})
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
	for _, args := range [][]string{
		{"policy", "default", "--kind", "resource", "other"},
		{"policy", "default", "resource"},
		{"policy", "default", "bogus"},
	} {
		if _, err := runCloister(t, args...); exitCode(t, err) != exitUsage {
			t.Errorf("%s: %v, want a usage error", strings.Join(args, " "), err)
		}
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

// The composite verifier's TEE name, which policy lists without importing
// it, selects an attestation policy.
func TestCompositeTEEHasPolicy(t *testing.T) {
	if !policy.IsAttestationTEE(string(composite.TEE)) {
		t.Errorf("policy.IsAttestationTEE(%q) = false", composite.TEE)
	}
}
