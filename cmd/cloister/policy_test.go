package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/admin"
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
		{"policy", "default"},
		{"policy", "default", "snp", "tdx"},
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

func TestNameModuleFile(t *testing.T) {
	tests := []struct {
		name, policyName, file string
		detail, want           string
	}{
		{"one error", "snp", "bad.rego",
			"invalid attestation policy snp: policy snp: 1 error occurred: snp.rego:4: rego_parse_error: unexpected eof token",
			"invalid attestation policy snp: policy snp: 1 error occurred: bad.rego:4: rego_parse_error: unexpected eof token"},
		{"several errors", "default", "dir/r.rego",
			"2 errors occurred:\ndefault.rego:4: rego_parse_error: a\ndefault.rego:7: rego_type_error: b",
			"2 errors occurred:\ndir/r.rego:4: rego_parse_error: a\ndir/r.rego:7: rego_type_error: b"},
		{"other module", "snp", "bad.rego",
			"policy snp: 1 error occurred: mysnp.rego:4: rego_parse_error: x",
			"policy snp: 1 error occurred: mysnp.rego:4: rego_parse_error: x"},
		{"dots in the name", "a.b", "$1.rego",
			"a.b.rego:2: x and axb.rego:2: y",
			"$1.rego:2: x and axb.rego:2: y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &admin.Problem{Status: 400, Title: "Invalid request", Detail: tt.detail}
			err := nameModuleFile(in, tt.policyName, tt.file)
			var p *admin.Problem
			if !errors.As(err, &p) {
				t.Fatalf("nameModuleFile returned %T, want *admin.Problem", err)
			}
			if p.Detail != tt.want {
				t.Errorf("detail = %q, want %q", p.Detail, tt.want)
			}
			if p.Status != in.Status || p.Title != in.Title {
				t.Errorf("status and title = %d %q, want %d %q", p.Status, p.Title, in.Status, in.Title)
			}
		})
	}

	other := errors.New("snp.rego:4: connection refused")
	if err := nameModuleFile(other, "snp", "bad.rego"); err != other {
		t.Errorf("nameModuleFile changed an error that is no problem document: %v", err)
	}
}
