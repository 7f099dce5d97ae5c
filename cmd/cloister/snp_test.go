package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// runCloister runs the command line args and returns its output and error.
func runCloister(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestEmulateSNPThenVerify(t *testing.T) {
	dir := t.TempDir()
	out, err := runCloister(t, "emulate", "snp", "--report-data", "c0ffee", "--out", dir)
	if err != nil {
		t.Fatalf("emulate snp: %v\n%s", err, out)
	}
	if !strings.Contains(out, "--trust-anchor") || !strings.Contains(out, "--allow-emulated") || !strings.Contains(out, "--report-data c0ffee ") {
		t.Errorf("emulate snp does not print the verify command line:\n%s", out)
	}
	report := filepath.Join(dir, "report.bin")
	collateralDir := filepath.Join(dir, "collateral")
	root := filepath.Join(dir, "dev-root", "ark.pem")

	tests := []struct {
		name     string
		args     []string
		exitCode int
		contains string
	}{
		{"accepted with allow-emulated", []string{"--trust-anchor", root, "--allow-emulated", "--report-data", "c0ffee"}, exitOK, "ACCEPT (EMULATED"},
		{"rejected by default appraisal", []string{"--trust-anchor", root}, exitRejected, "emulated TEE"},
		{"rejected without trust anchor", []string{"--allow-emulated"}, exitRejected, "--trust-anchor"},
		{"rejected for other report data", []string{"--trust-anchor", root, "--allow-emulated", "--report-data", "c0ffef"}, exitRejected, "report data"},
		{"short nonce warned", []string{"--trust-anchor", root, "--allow-emulated", "--nonce", "c0ff"}, exitOK, "warning: --nonce has 2 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"verify", "--collateral", collateralDir}, tc.args...)
			out, err := runCloister(t, append(args, report)...)
			code := exitOK
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if code != tc.exitCode {
				t.Fatalf("exit code %d, want %d:\n%s", code, tc.exitCode, out)
			}
			if !strings.Contains(out, tc.contains) {
				t.Errorf("output lacks %q:\n%s", tc.contains, out)
			}
		})
	}
}

func TestEmulateSNPDebug(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCloister(t, "emulate", "snp", "--report-data", "01", "--debug", "--product", "Genoa", "--out", dir); err != nil {
		t.Fatalf("emulate snp: %v\n%s", err, out)
	}
	out, err := runCloister(t, "verify", "--collateral", filepath.Join(dir, "collateral"),
		"--trust-anchor", filepath.Join(dir, "dev-root", "ark.pem"), "--allow-emulated", filepath.Join(dir, "report.bin"))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitRejected {
		t.Fatalf("verify of a debug guest: %v, want exit code %d:\n%s", err, exitRejected, out)
	}
	if !strings.Contains(out, "debug") || !strings.Contains(out, "Genoa") {
		t.Errorf("output does not name debug and Genoa:\n%s", out)
	}
}

func TestEmulateSNPUsage(t *testing.T) {
	for _, args := range [][]string{
		{"emulate", "snp", "--report-data", "zz", "--out", t.TempDir()},
		{"emulate", "snp", "--report-data", "01"},
		{"emulate", "snp", "--report-data", "01", "--product", "Naples", "--out", t.TempDir()},
	} {
		_, err := runCloister(t, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("%v: error %v, want a usage error", args, err)
		}
	}
}
