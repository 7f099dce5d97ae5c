package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/agent"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/tee/dcap"
)

// unreadableLogAttester is an emulated TDX guest whose CC event log
// cannot be read, as for a user other than root.
type unreadableLogAttester struct{ *dcap.Emulator }

func (unreadableLogAttester) EventLog(context.Context) ([]byte, error) {
	return nil, fmt.Errorf("tdx: reading the CC event log: open %s: %w", dcap.CCELPath, fs.ErrPermission)
}

// runCollectEvidence runs collectEvidence for an emulated TEE whose
// attester is a, and returns its output and its warnings.
func runCollectEvidence(t *testing.T, a attest.Attester, out, output string) (stdout, stderr string) {
	t.Helper()
	cmd := &cobra.Command{}
	var outBuf, errBuf bytes.Buffer
	cmd.SetOut(&outBuf)
	cmd.SetErr(&errBuf)
	cmd.SetContext(context.Background())
	sel := &agent.Selection{Attester: a, Emulated: true}
	if err := collectEvidence(cmd, sel, []byte{0xc0, 0xff, 0xee}, out, output); err != nil {
		t.Fatalf("collectEvidence: %v\n%s%s", err, outBuf.String(), errBuf.String())
	}
	return outBuf.String(), errBuf.String()
}

// The evidence of an attester with an event log carries the log: in the
// JSON and text output, and with --out in FILE.ccel.bin, which the printed
// verify command passes with --event-log. A log that cannot be read leaves
// a warning and evidence without the log.
func TestEvidenceEventLog(t *testing.T) {
	tdx, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	sgx, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "sgx"})
	if err != nil {
		t.Fatal(err)
	}
	emulatedLog, err := tdx.EventLog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		attester attest.Attester
		wantLog  []byte
		// wantWarning is text that stderr must contain, or empty for no
		// output on stderr.
		wantWarning []string
	}{
		{name: "TDX with log", attester: tdx, wantLog: emulatedLog},
		{name: "TDX unreadable log", attester: unreadableLogAttester{tdx},
			wantWarning: []string{"warning: reading the event log failed", "not-checked", "permission denied", dcap.CCELPath}},
		{name: "SGX without log", attester: sgx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantWarnings := func(t *testing.T, stderr string) {
				t.Helper()
				if len(tc.wantWarning) == 0 && stderr != "" {
					t.Errorf("unexpected output on stderr:\n%s", stderr)
				}
				for _, want := range tc.wantWarning {
					if !strings.Contains(stderr, want) {
						t.Errorf("stderr does not contain %q:\n%s", want, stderr)
					}
				}
			}

			t.Run("json", func(t *testing.T) {
				stdout, stderr := runCollectEvidence(t, tc.attester, "", "json")
				wantWarnings(t, stderr)
				var res evidenceOutput
				if err := json.Unmarshal([]byte(stdout), &res); err != nil {
					t.Fatalf("output is not JSON: %v\n%s", err, stdout)
				}
				if res.EventLog != base64.StdEncoding.EncodeToString(tc.wantLog) {
					t.Errorf("event_log_base64 has %d characters, expected the base64 of the %d-byte log", len(res.EventLog), len(tc.wantLog))
				}
			})
			t.Run("text", func(t *testing.T) {
				stdout, stderr := runCollectEvidence(t, tc.attester, "", "text")
				wantWarnings(t, stderr)
				hasLog := strings.Contains(stdout, "event log (base64):\n"+base64.StdEncoding.EncodeToString(tc.wantLog)+"\n")
				if hasLog != (tc.wantLog != nil) {
					t.Errorf("the text output shows the event log: %v, expected %v:\n%s", hasLog, tc.wantLog != nil, stdout)
				}
			})
			t.Run("out", func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "quote.bin")
				stdout, stderr := runCollectEvidence(t, tc.attester, out, "json")
				wantWarnings(t, stderr)
				var res evidenceOutput
				if err := json.Unmarshal([]byte(stdout), &res); err != nil {
					t.Fatalf("output is not JSON: %v\n%s", err, stdout)
				}
				wantEventLogFile(t, out+".ccel.bin", tc.wantLog, res)
			})
		})
	}
}

// wantEventLogFile checks that path contains wantLog and that res lists it
// and passes it to the verify command, or that neither has it when wantLog
// is nil.
func wantEventLogFile(t *testing.T, path string, wantLog []byte, res evidenceOutput) {
	t.Helper()
	flag := "--event-log " + path + " "
	listed := slices.Contains(res.Files, path)
	got, err := os.ReadFile(path)
	if wantLog == nil {
		if !os.IsNotExist(err) {
			t.Errorf("%s exists (error %v), expected no event log file", path, err)
		}
		if listed {
			t.Errorf("files %v list %s, expected no event log", res.Files, path)
		}
		if strings.Contains(res.Verify, "--event-log") {
			t.Errorf("verify command %q passes an event log, expected none", res.Verify)
		}
		return
	}

	if err != nil {
		t.Fatalf("reading the event log file: %v", err)
	}
	if !bytes.Equal(got, wantLog) {
		t.Errorf("%s has %d bytes, expected the %d-byte event log", path, len(got), len(wantLog))
	}
	if !listed {
		t.Errorf("files %v do not list %s", res.Files, path)
	}
	if !strings.Contains(res.Verify, flag) {
		t.Errorf("verify command %q does not contain %q", res.Verify, flag)
	}
}

// The files that `cloister evidence --out` writes for a TDX guest verify
// with the printed command, given the emulator's collateral and root, and
// the event log replays against the quote's RTMRs.
func TestEvidenceFilesVerifyEventLog(t *testing.T) {
	tdx, err := dcap.NewEmulator(dcap.EmulatorOptions{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "quote.bin")
	stdout, _ := runCollectEvidence(t, tdx, out, "json")
	var res evidenceOutput
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	command := strings.Fields(res.Verify)
	if len(command) < 2 || command[0] != "cloister" || command[1] != "verify" {
		t.Fatalf("verify command %q does not start with cloister verify", res.Verify)
	}

	collateralDir := filepath.Join(dir, "collateral")
	files, err := tdx.CollateralFiles(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(collateralDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(collateralDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tdx.Root().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	args := append(command[1:], "--collateral", collateralDir, "--trust-anchor", "tdx="+root, "--allow-emulated", "--report-data", "c0ffee")
	text, err := runCloister(t, args...)
	if code := exitCode(t, err); code != exitOK {
		t.Fatalf("%s: exit code %d, expected %d: %v\n%s", strings.Join(args, " "), code, exitOK, err, text)
	}
	if !strings.Contains(text, "passed       event-log") {
		t.Errorf("the event-log check did not pass:\n%s", text)
	}
}

func TestEvidenceSNPVMPLErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"out of range", []string{"evidence", "--emulated", "--snp-vmpl", "4"}, exitUsage, `invalid --snp-vmpl "4": use 0, 1, 2 or 3`},
		{"emulated TEE", []string{"evidence", "--emulated", "--snp-vmpl", "1"}, exitRejected, "the emulated TEE reports at VMPL 0 only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCloister(t, tc.args...)
			if code := exitCode(t, err); code != tc.code {
				t.Fatalf("exit code %d, want %d: %v\n%s", code, tc.code, err, out)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v lacks %q", err, tc.want)
			}
		})
	}
}
