package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmulateDCAPThenVerify(t *testing.T) {
	for _, tc := range []struct {
		tee     string
		version string
	}{{"sgx", "3"}, {"sgx", "4"}, {"sgx", "5"}, {"tdx", "4"}, {"tdx", "5"}} {
		t.Run(tc.tee+"-v"+tc.version, func(t *testing.T) {
			dir := t.TempDir()
			out, err := runCloister(t, "emulate", tc.tee, "--report-data", "c0ffee", "--quote-version", tc.version, "--out", dir)
			if err != nil {
				t.Fatalf("emulate %s: %v\n%s", tc.tee, err, out)
			}
			if !strings.Contains(out, "--trust-anchor") || !strings.Contains(out, "EMULATED") {
				t.Errorf("emulate %s does not print the verify command line:\n%s", tc.tee, out)
			}
			quote := filepath.Join(dir, "quote.bin")
			collateralDir := filepath.Join(dir, "collateral")
			root := filepath.Join(dir, "dev-root", "root.pem")

			checks := []struct {
				name     string
				args     []string
				exitCode int
				contains string
			}{
				{"accepted with allow-emulated", []string{"--trust-anchor", root, "--allow-emulated", "--report-data", "c0ffee"}, exitOK, "UpToDate"},
				{"rejected by default appraisal", []string{"--trust-anchor", root}, exitRejected, "emulated TEE"},
				{"rejected without trust anchor", []string{"--allow-emulated"}, exitRejected, "--trust-anchor"},
				{"rejected for other report data", []string{"--trust-anchor", root, "--allow-emulated", "--report-data", "c0ffef"}, exitRejected, "report data"},
			}
			for _, c := range checks {
				args := append([]string{"verify", "--collateral", collateralDir}, c.args...)
				out, err := runCloister(t, append(args, quote)...)
				code := exitOK
				var ee *exitError
				if errors.As(err, &ee) {
					code = ee.code
				} else if err != nil {
					t.Fatalf("%s: verify: %v", c.name, err)
				}
				if code != c.exitCode {
					t.Errorf("%s: exit code %d, expected %d:\n%s", c.name, code, c.exitCode, out)
				}
				if !strings.Contains(out, c.contains) {
					t.Errorf("%s: output does not contain %q:\n%s", c.name, c.contains, out)
				}
			}
		})
	}
}

func TestEmulateDCAPInvalidVersion(t *testing.T) {
	out, err := runCloister(t, "emulate", "tdx", "--report-data", "00", "--quote-version", "3", "--out", t.TempDir())
	if err == nil {
		t.Fatalf("quote version 3 for TDX accepted:\n%s", out)
	}
	if !strings.Contains(err.Error(), "quote version 3") {
		t.Errorf("error %q does not name the version", err)
	}
}
