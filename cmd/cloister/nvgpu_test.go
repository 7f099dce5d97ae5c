package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// printedVerifyArgs returns the arguments of the `cloister verify` command
// line that an emulate command printed.
func printedVerifyArgs(t *testing.T, out string) []string {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 2 && fields[0] == "cloister" && fields[1] == "verify" {
			return fields[1:]
		}
	}
	t.Fatalf("no cloister verify command line in the output:\n%s", out)
	return nil
}

func TestEmulateNVIDIAGPUThenVerify(t *testing.T) {
	dir := t.TempDir()
	nonce := strings.Repeat("c0", 32)
	out, err := runCloister(t, "emulate", "nvidia-gpu", "--gpus", "2", "--nonce", nonce, "--out", dir)
	if err != nil {
		t.Fatalf("emulate nvidia-gpu: %v\n%s", err, out)
	}
	if !strings.Contains(out, "EMULATED NVIDIA GPU evidence (2 GPUs)") {
		t.Errorf("emulate nvidia-gpu does not label its output as emulated:\n%s", out)
	}

	// The printed command line, run as a user would run it, accepts the
	// evidence with the RIM check passed.
	printed := printedVerifyArgs(t, out)
	out, err = runCloister(t, printed...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(printed, " "), err, out)
	}
	for _, want := range []string{"ACCEPT (EMULATED", "passed       rim", "passed       nonce", "gpu1/fwid"} {
		if !strings.Contains(out, want) {
			t.Errorf("output of the printed command lacks %q:\n%s", want, out)
		}
	}

	evidence := filepath.Join(dir, "gpu-evidence.json")
	rims := "nvidia-gpu=" + filepath.Join(dir, "collateral")
	roots := "nvidia-gpu=" + filepath.Join(dir, "dev-root")
	tests := []struct {
		name     string
		args     []string
		exitCode int
		contains string
	}{
		{"rejected by default appraisal", []string{"--collateral", rims, "--trust-anchor", roots, "--nonce", nonce}, exitRejected, "emulated TEE"},
		{"rejected without trust anchor", []string{"--collateral", rims, "--allow-emulated"}, exitRejected, "NVIDIA Device Identity CA"},
		{"rejected for another nonce", []string{"--collateral", rims, "--trust-anchor", roots, "--allow-emulated", "--nonce", strings.Repeat("c1", 32)}, exitRejected, "nonce"},
		{"rim not checked without RIMs", []string{"--trust-anchor", roots, "--allow-emulated", "--nonce", nonce}, exitOK, "not-checked  rim"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"verify"}, tc.args...), evidence)
			out, err := runCloister(t, args...)
			if code := exitCode(t, err); code != tc.exitCode {
				t.Fatalf("exit code %d, expected %d (error %v):\n%s", code, tc.exitCode, err, out)
			}
			if !strings.Contains(out, tc.contains) {
				t.Errorf("output lacks %q:\n%s", tc.contains, out)
			}
		})
	}
}

func TestEmulateNVIDIAGPUFlagsRejected(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		contains string
	}{
		{"no out", []string{"--gpus", "1"}, "--out is required"},
		{"short nonce", []string{"--nonce", "abcd"}, "32 bytes"},
		{"nonce not hex", []string{"--nonce", "xyz"}, "--nonce"},
		{"too many GPUs", []string{"--gpus", "9"}, "use 1 to 8"},
		{"no GPU", []string{"--gpus", "0"}, "use 1 to 8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"emulate", "nvidia-gpu"}, tc.args...)
			if tc.name != "no out" {
				args = append(args, "--out", t.TempDir())
			}
			out, err := runCloister(t, args...)
			if err == nil {
				t.Fatalf("emulate nvidia-gpu %v succeeded:\n%s", tc.args, out)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q lacks %q", err, tc.contains)
			}
		})
	}
}
