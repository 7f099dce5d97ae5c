package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/cloister-dev/cloister/internal/corpus"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

// runCloisterWithInput runs the command line args with stdin as standard
// input and returns its output and error.
func runCloisterWithInput(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetIn(bytes.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// collateral fetch reads every form of NVIDIA GPU evidence that verify
// reads: a single GPU's report in hexadecimal (from a file or standard
// input, detected or named with --format) with its chain from
// --collateral, and the JSON forms that carry the chain. For each, verify
// accepts the evidence and fetch sends an OCSP request for each of the
// three certificates between the leaf and the root to a responder on
// loopback.
func TestCollateralFetchNVIDIAEvidenceForms(t *testing.T) {
	c, ok := corpus.FirstAccepted(t, "nvidia-gpu", func(c corpus.Case) bool { return c.Expect.OtherInputs["cert_chain"] != "" })
	if !ok {
		t.Skip("no accepted nvidia-gpu case with a certificate chain in the corpus")
	}
	reportPath := filepath.Join(c.Dir, c.Expect.Evidence)
	chainPath := filepath.Join(c.Dir, c.Expect.OtherInputs["cert_chain"])
	reportHex := strings.TrimSpace(string(c.EvidenceBytes(t)))
	chain, err := os.ReadFile(chainPath)
	if err != nil {
		t.Fatal(err)
	}
	report, err := hex.DecodeString(reportHex)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sdkPath := writeJSON(t, dir, "sdk.json", []map[string]string{
		{"attestationReportHexStr": reportHex, "certChainBase64Encoded": base64.StdEncoding.EncodeToString(chain)}})
	trusteePath := writeJSON(t, dir, "nvattest.json", map[string]any{"evidences": []map[string]string{
		{"evidence": base64.StdEncoding.EncodeToString(report), "certificate": base64.StdEncoding.EncodeToString(chain)}}})

	tests := []struct {
		name  string
		args  []string
		stdin []byte
	}{
		{"hex report with chain", []string{"--collateral", "nvidia-gpu=" + chainPath, reportPath}, nil},
		{"hex report with --format", []string{"--format", "nvidia-gpu", "--collateral", chainPath, reportPath}, nil},
		{"hex report on standard input", []string{"--collateral", chainPath, "-"}, []byte(reportHex)},
		{"NVIDIA SDK JSON array", []string{sdkPath}, nil},
		{"nvattest JSON object", []string{trusteePath}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCloisterWithInput(t, tt.stdin, append([]string{"verify", "--at", c.Expect.At}, tt.args...)...)
			if code := exitCode(t, err); code != exitOK {
				t.Fatalf("verify: exit code %d, want 0:\n%s", code, out)
			}

			var requests atomic.Int64
			responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if _, err := ocsp.ParseRequest(body); err == nil {
					requests.Add(1)
				}
				http.NotFound(w, r)
			}))
			defer responder.Close()
			args := append([]string{"collateral", "fetch", "--cache-dir", t.TempDir(), "--ocsp-url", responder.URL, "--at", c.Expect.At}, tt.args...)
			out, err = runCloisterWithInput(t, tt.stdin, args...)
			if code := exitCode(t, err); code != exitOK {
				t.Fatalf("collateral fetch: exit code %d, want 0:\n%s", code, out)
			}
			if !strings.Contains(out, ": fetched (verification: verified)") {
				t.Errorf("collateral fetch output does not report the fetch:\n%s", out)
			}
			if !strings.Contains(out, "not checked: ocsp:") {
				t.Errorf("collateral fetch output does not report the ocsp check as not checked:\n%s", out)
			}
			if !strings.Contains(out, "not found upstream") {
				t.Errorf("collateral fetch output does not report that the responder had no response:\n%s", out)
			}
			if n := requests.Load(); n != 3 {
				t.Errorf("%d OCSP requests, want 3: the BROM, the provisioner CA and the identity CA", n)
			}
		})
	}
}

func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// collateral fetch reports evidence whose collateral it cannot fetch as an
// incomplete fetch with the cause and its fix, and an unknown --format as a
// usage error.
func TestCollateralFetchRejects(t *testing.T) {
	c, ok := corpus.FirstAccepted(t, "nvidia-gpu", func(c corpus.Case) bool { return c.Expect.OtherInputs["cert_chain"] != "" })
	if !ok {
		t.Skip("no accepted nvidia-gpu case with a certificate chain in the corpus")
	}
	reportPath := filepath.Join(c.Dir, c.Expect.Evidence)
	garbage := filepath.Join(t.TempDir(), "garbage.txt")
	if err := os.WriteFile(garbage, []byte("not evidence\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An emulated GPU's report cut after its SPDM request and the start
	// of the response is detected as a report but does not parse.
	truncated := filepath.Join(t.TempDir(), "truncated.txt")
	if err := os.WriteFile(truncated, []byte(emulatedReportHex(t)[:200]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		args     []string
		exitCode int
		contains []string
	}{
		{"hex report without chain", []string{reportPath}, exitRejected,
			[]string{"not all collateral could be fetched", "pass the GPU's certificate chain (PEM, leaf first) with --collateral", "collateral incomplete for"}},
		{"unrecognized evidence", []string{garbage}, exitRejected,
			[]string{"garbage.txt: nothing fetched: unsupported", "name it with --format"}},
		{"truncated report", []string{truncated}, exitRejected,
			[]string{"truncated.txt: collateral not known to be complete, because the evidence or its collateral does not parse", "collateral incomplete for"}},
		{"unknown format", []string{"--format", "bogus", reportPath}, exitUsage,
			[]string{`unknown --format "bogus"`, "nvidia-gpu"}},
		{"missing collateral file", []string{"--collateral", filepath.Join(t.TempDir(), "absent.pem"), reportPath}, exitUsage,
			[]string{"--collateral"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No request leaves the machine: 127.0.0.1:1 refuses connections.
			args := append([]string{"collateral", "fetch", "--cache-dir", t.TempDir(), "--ocsp-url", "http://127.0.0.1:1/ocsp", "--at", c.Expect.At}, tt.args...)
			out, err := runCloister(t, args...)
			if code := exitCode(t, err); code != tt.exitCode {
				t.Fatalf("exit code %d, want %d:\n%s", code, tt.exitCode, out)
			}
			text := out + errorText(err)
			for _, want := range tt.contains {
				if !strings.Contains(text, want) {
					t.Errorf("output does not contain %q:\n%s", want, text)
				}
			}
		})
	}
}

// emulatedReportHex returns the hexadecimal report of one emulated GPU.
func emulatedReportHex(t *testing.T) string {
	t.Helper()
	gpu, err := nvgpu.NewEmulator(nvgpu.EmulatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := gpu.Attest(context.Background(), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Report string `json:"attestationReportHexStr"`
	}
	if err := json.Unmarshal(ev.Data, &entries); err != nil {
		t.Fatalf("emulated GPU evidence %.80q: %v", ev.Data, err)
	}
	if len(entries) != 1 {
		t.Fatalf("emulated GPU evidence has %d reports, want 1", len(entries))
	}
	return entries[0].Report
}
