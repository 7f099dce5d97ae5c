package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
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

// An emulated TD launched before a TDX module update verifies as OutOfDate,
// and the output advises a relaunch instead of a firmware update.
func TestEmulateTDXModuleUpdated(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCloister(t, "emulate", "tdx", "--report-data", "00", "--quote-version", "4", "--module-updated", "--out", dir); err == nil ||
		!strings.Contains(err.Error(), "--quote-version 5") {
		t.Fatalf("--module-updated with a version 4 quote: error %v, expected one that names --quote-version 5\n%s", err, out)
	}

	if out, err := runCloister(t, "emulate", "tdx", "--report-data", "00", "--quote-version", "5", "--module-updated", "--out", dir); err != nil {
		t.Fatalf("emulate tdx: %v\n%s", err, out)
	}
	out, err := runCloister(t, "verify", "--collateral", filepath.Join(dir, "collateral"),
		"--trust-anchor", filepath.Join(dir, "dev-root", "root.pem"), "--allow-emulated", filepath.Join(dir, "quote.bin"))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitRejected {
		t.Fatalf("verify: error %v, expected a rejection\n%s", err, out)
	}
	for _, want := range []string{"TCB status OutOfDate", "relaunch the TD", "relaunch:", "TD relaunch advised"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
}

// The emulated TDX guest's event log replays to its quote's RTMRs, an
// altered log is rejected naming the register, and evidence of another
// format does not take an event log.
func TestVerifyEventLogFlag(t *testing.T) {
	dir := t.TempDir()
	out, err := runCloister(t, "emulate", "tdx", "--report-data", "c0ffee", "--out", dir)
	if err != nil {
		t.Fatalf("emulate tdx: %v\n%s", err, out)
	}
	eventLog := filepath.Join(dir, "ccel.bin")
	if !strings.Contains(out, "--event-log "+eventLog) {
		t.Errorf("emulate tdx does not print --event-log in the verify command line:\n%s", out)
	}
	log, err := os.ReadFile(eventLog)
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Clone(log)
	// The first byte of the first measured event's SHA-384 digest, after
	// the 65-byte Spec ID event and the 14-byte event header.
	altered[65+14] ^= 1
	alteredLog := filepath.Join(dir, "altered.bin")
	if err := os.WriteFile(alteredLog, altered, 0o644); err != nil {
		t.Fatal(err)
	}
	snpDir := t.TempDir()
	if out, err := runCloister(t, "emulate", "snp", "--report-data", "c0ffee", "--out", snpDir); err != nil {
		t.Fatalf("emulate snp: %v\n%s", err, out)
	}

	base := []string{"verify", "--collateral", filepath.Join(dir, "collateral"), "--trust-anchor", filepath.Join(dir, "dev-root", "root.pem"), "--allow-emulated"}
	quote := filepath.Join(dir, "quote.bin")
	for _, tc := range []struct {
		name     string
		args     []string
		exitCode int
		contains []string
	}{
		{"matching log", []string{"--event-log", eventLog, quote}, exitOK, []string{"passed       event-log"}},
		{"no log", []string{quote}, exitOK, []string{"not-checked  event-log"}},
		{"altered log", []string{"--event-log", alteredLog, quote}, exitRejected, []string{"cc_eventlog", "RTMR0"}},
		{"missing file", []string{"--event-log", filepath.Join(dir, "absent.bin"), quote}, exitUsage, []string{"--event-log"}},
		{"SEV-SNP evidence", []string{"--event-log", eventLog, filepath.Join(snpDir, "report.bin")}, exitUsage, []string{"TDX quotes only", "snp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCloister(t, append(slices.Clone(base), tc.args...)...)
			if code := exitCode(t, err); code != tc.exitCode {
				t.Fatalf("exit code %d, expected %d: %v\n%s", code, tc.exitCode, err, out)
			}
			text := out
			if err != nil {
				text += err.Error()
			}
			for _, want := range tc.contains {
				if !strings.Contains(text, want) {
					t.Errorf("output does not contain %q:\n%s", want, text)
				}
			}
		})
	}
}
