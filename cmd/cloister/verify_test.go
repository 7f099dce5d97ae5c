package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// exitCode returns the exit status main would use for err.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	}
	return exitUsage
}

// checkExitAndOutput fails the test unless the command exited with code and
// its output or error contains want.
func checkExitAndOutput(t *testing.T, out string, err error, code int, want string) {
	t.Helper()
	if got := exitCode(t, err); got != code {
		t.Fatalf("exit code %d, want %d: %v\n%s", got, code, err, out)
	}
	text := out
	if err != nil {
		text += err.Error()
	}
	if !strings.Contains(text, want) {
		t.Errorf("output and error lack %q: %s", want, text)
	}
}

func TestVerifyCorpusCaseJSON(t *testing.T) {
	c, ok := corpus.FirstAccepted(t, "snp", nil)
	if !ok {
		t.Fatal("no accepted snp case in the corpus")
	}
	args := []string{"verify", "--collateral", c.Dir, "--at", c.Expect.At, "--output", "json", filepath.Join(c.Dir, c.Expect.Evidence)}
	out, err := runCloister(t, args...)
	if code := exitCode(t, err); code != exitOK {
		t.Fatalf("exit code %d, want 0:\n%s", code, out)
	}
	var res struct {
		Verdict string `json:"verdict"`
		Claims  struct {
			Measurement string `json:"measurement"`
			ReportData  string `json:"report_data"`
			SigningKey  string `json:"signing_key"`
		} `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if res.Verdict != "accept" {
		t.Errorf("verdict %q, want accept", res.Verdict)
	}
	if res.Claims.Measurement != c.Expect.Measurement {
		t.Errorf("measurement %s, want %s", res.Claims.Measurement, c.Expect.Measurement)
	}
	if res.Claims.ReportData != c.Expect.ReportData {
		t.Errorf("report data %s, want %s", res.Claims.ReportData, c.Expect.ReportData)
	}
	if res.Claims.SigningKey != c.Expect.SigningKey {
		t.Errorf("signing key %s, want %s", res.Claims.SigningKey, c.Expect.SigningKey)
	}

	// The same evidence at a time after the VCEK's validity, or against
	// another measurement, is rejected with exit code 1 and a reason.
	args = []string{"verify", "--collateral", c.Dir, "--at", c.Expect.At, "--measurement", strings.Repeat("00", 48), filepath.Join(c.Dir, c.Expect.Evidence)}
	out, err = runCloister(t, args...)
	if code := exitCode(t, err); code != exitRejected {
		t.Fatalf("other measurement: exit code %d, want 1:\n%s", code, out)
	}
	if !strings.Contains(out, "differs from the expected") {
		t.Errorf("rejection does not name the measurement:\n%s", out)
	}
}

// The emulated member of the JSON output is a boolean once a trust anchor
// verified the evidence, and null before, so that a rejection without
// collateral does not read as "not emulated".
func TestVerifyJSONEmulated(t *testing.T) {
	c, ok := corpus.FirstAccepted(t, "snp", nil)
	if !ok {
		t.Fatal("no accepted snp case in the corpus")
	}
	evidence := filepath.Join(c.Dir, c.Expect.Evidence)
	tests := []struct {
		name     string
		args     []string
		expected string
	}{
		{"verified", []string{"--collateral", c.Dir}, "false"},
		{"no collateral", []string{"--collateral", t.TempDir()}, "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify", "--at", c.Expect.At, "--output", "json"}, tt.args...)
			out, _ := runCloister(t, append(args, evidence)...)
			var res map[string]json.RawMessage
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if got := string(res["emulated"]); got != tt.expected {
				t.Errorf("emulated is %s, expected %s:\n%s", got, tt.expected, out)
			}
		})
	}
}

func TestVerifyUsageErrors(t *testing.T) {
	dir := t.TempDir()
	evidence := filepath.Join(dir, "evidence.bin")
	if err := os.WriteFile(evidence, []byte("not evidence"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing file", []string{"verify", filepath.Join(dir, "absent")}, exitUsage, "reading evidence"},
		{"bad time", []string{"verify", "--at", "yesterday", evidence}, exitUsage, "invalid --at"},
		{"bad output", []string{"verify", "--output", "xml", evidence}, exitUsage, "invalid --output"},
		{"bad hex", []string{"verify", "--measurement", "zz", evidence}, exitUsage, "--measurement"},
		{"bad min tcb", []string{"verify", "--min-tcb", "snp", evidence}, exitUsage, "--min-tcb"},
		{"missing collateral", []string{"verify", "--collateral", filepath.Join(dir, "none"), evidence}, exitUsage, "--collateral"},
		{"empty trust anchor", []string{"verify", "--trust-anchor", evidence, evidence}, exitUsage, "--trust-anchor"},
		{"unknown format", []string{"verify", evidence}, exitRejected, "format not recognized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCloister(t, tc.args...)
			checkExitAndOutput(t, out, err, tc.code, tc.want)
		})
	}
}

func TestEvidenceEmulatedThenVerify(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ev.bin")
	text, err := runCloister(t, "evidence", "--emulated", "--report-data", "abcd", "--out", out)
	if err != nil {
		t.Fatalf("evidence: %v\n%s", err, text)
	}
	if !strings.Contains(strings.ToLower(text), "emulated") {
		t.Errorf("evidence output does not say emulated:\n%s", text)
	}
	args := []string{"verify", "--collateral", out + ".collateral.pem", "--trust-anchor", out + ".root.pem",
		"--allow-emulated", "--report-data", "abcd", out}
	text, err = runCloister(t, args...)
	if code := exitCode(t, err); code != exitOK {
		t.Fatalf("verify of emulated evidence: exit code %d:\n%s", code, text)
	}
	if !strings.Contains(text, "EMULATED") {
		t.Errorf("verify output does not label the evidence EMULATED:\n%s", text)
	}
}

func TestInspectReport(t *testing.T) {
	c := corpus.Cases(t, "snp")[0]
	out, err := runCloister(t, "inspect", filepath.Join(c.Dir, c.Expect.Evidence))
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inspect output is not JSON: %v", err)
	}
	if doc["unverified"] != true || doc["format"] != "snp" {
		t.Errorf("inspect output = format %v, unverified %v", doc["format"], doc["unverified"])
	}
}

func TestCollateralBundleCommands(t *testing.T) {
	cache, bundle := t.TempDir(), filepath.Join(t.TempDir(), "bundle")
	out, err := runCloister(t, "collateral", "export", "--cache-dir", cache, bundle)
	if exitCode(t, err) != exitUsage || !strings.Contains(err.Error(), "cloister collateral fetch") {
		t.Fatalf("export of an empty cache: error %v, expected a usage error that names collateral fetch\n%s", err, out)
	}
	if _, err := os.Stat(bundle); err == nil {
		t.Error("export of an empty cache created the bundle directory")
	}

	entry := &collateral.Entry{Key: "pcs/tdx/tcb/90C06F000000", URL: "https://pcs.example/tdx/certification/v4/tcb",
		Body: []byte(`{"tcbInfo":{"id":"TDX","fmspc":"90C06F000000"}}`), FetchedAt: time.Now()}
	if err := (collateral.DiskBackend{Dir: cache}).Put(context.Background(), entry); err != nil {
		t.Fatal(err)
	}
	if out, err := runCloister(t, "collateral", "export", "--cache-dir", cache, bundle); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(bundle, "manifest.json")); err != nil {
		t.Fatalf("export wrote no manifest: %v", err)
	}
	if out, err := runCloister(t, "collateral", "import", "--cache-dir", t.TempDir(), bundle); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if _, err := runCloister(t, "collateral", "import", "--cache-dir", t.TempDir(), t.TempDir()); err == nil ||
		!strings.Contains(err.Error(), "to --collateral as it is") {
		t.Errorf("import of a directory without a manifest: error %v, expected one that points to --collateral", err)
	}
	out, err = runCloister(t, "collateral", "ls", "--cache-dir", cache)
	if err != nil || !strings.Contains(out, "NEXT UPDATE") {
		t.Errorf("ls: %v\n%s", err, out)
	}
	if _, err := runCloister(t, "collateral", "fetch", "--cache-dir", cache); exitCode(t, err) != exitUsage {
		t.Errorf("fetch with nothing to fetch: %v, want a usage error", err)
	}
}

// A fetch that downloads nothing fails, naming the evidence, instead of
// reporting it as fetched.
func TestCollateralFetchFailsWithoutCollateral(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCloister(t, "emulate", "snp", "--report-data", "c0ffee", "--out", dir); err != nil {
		t.Fatalf("emulate snp: %v\n%s", err, out)
	}
	// A KDS on loopback that fails every request with a Retry-After of an
	// hour, longer than the fetcher waits, so the fetch fails at once.
	kds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer kds.Close()

	report := filepath.Join(dir, "report.bin")
	out, err := runCloister(t, "collateral", "fetch", "--cache-dir", t.TempDir(), "--kds-url", kds.URL, report)
	if exitCode(t, err) != exitRejected {
		t.Fatalf("fetch from a failing KDS: exit %d, want %d\n%s", exitCode(t, err), exitRejected, out)
	}
	if !strings.Contains(out, "not all collateral could be fetched") {
		t.Errorf("output does not say the fetch failed:\n%s", out)
	}
}

// --min-tcb-evaluation-data-number accepts a real TDX quote whose TCB Info
// and QE Identity reach the minimum and rejects it, naming both numbers,
// when they are below it.
func TestVerifyMinTCBEvaluationDataNumber(t *testing.T) {
	c, ok := corpus.FirstAccepted(t, "tdx", nil)
	if !ok {
		t.Fatal("no accepted tdx case in the corpus")
	}
	evidence := filepath.Join(c.Dir, c.Expect.Evidence)
	out, err := runCloister(t, "verify", "--collateral", c.Dir, "--at", c.Expect.At, "--output", "json", evidence)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	var res struct {
		Claims struct {
			Attributes struct {
				Number *uint32 `json:"tcb_evaluation_data_number"`
			} `json:"attributes"`
		} `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if res.Claims.Attributes.Number == nil {
		t.Fatalf("claims lack tcb_evaluation_data_number:\n%s", out)
	}
	n := *res.Claims.Attributes.Number
	tests := []struct {
		name    string
		minimum string
		code    int
		want    string
	}{
		{"zero sets none", "0", exitOK, ""},
		{"equal", fmt.Sprint(n), exitOK, ""},
		{"below", fmt.Sprint(n - 1), exitOK, ""},
		{"above", fmt.Sprint(n + 1), exitRejected, fmt.Sprintf("TCB evaluation data number %d (the lower of the TCB Info's and the QE Identity's) is below the minimum %d", n, n+1)},
		{"above names fix", fmt.Sprint(n + 1), exitRejected, "fetch the current TCB Info and QE Identity from Intel PCS, or lower --min-tcb-evaluation-data-number"},
		{"not a number", "x", exitUsage, "min-tcb-evaluation-data-number"},
		{"negative", "-1", exitUsage, "min-tcb-evaluation-data-number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCloister(t, "verify", "--collateral", c.Dir, "--at", c.Expect.At, "--min-tcb-evaluation-data-number", tc.minimum, evidence)
			checkExitAndOutput(t, out, err, tc.code, tc.want)
		})
	}

	// Without collateral no TCB Info or QE Identity is verified, so a
	// minimum cannot be met, even where the undetermined status is allowed.
	out, err = runCloister(t, "verify", "--at", c.Expect.At, "--allow-undetermined-tcb", "--min-tcb-evaluation-data-number", "1", evidence)
	if code := exitCode(t, err); code != exitRejected {
		t.Fatalf("without collateral: exit code %d, want 1: %v\n%s", code, err, out)
	}
	if !strings.Contains(out, "no TCB Info or QE Identity was verified") {
		t.Errorf("rejection without collateral does not say why:\n%s", out)
	}
}

// A real AWS report from VMPL 1 is accepted by default, and --max-vmpl
// rejects it only below 1, naming the VMPL and the maximum.
func TestVerifyMaxVMPL(t *testing.T) {
	c, ok := corpus.FirstAccepted(t, "snp", func(c corpus.Case) bool { return c.Expect.SigningKey == "VLEK" })
	if !ok {
		t.Fatal("no accepted snp case with a VLEK in the corpus")
	}
	evidence := filepath.Join(c.Dir, c.Expect.Evidence)
	tests := []struct {
		name    string
		maximum []string
		code    int
		want    string
	}{
		{"default any", nil, exitOK, ""},
		{"equal", []string{"--max-vmpl", "1"}, exitOK, ""},
		{"above", []string{"--max-vmpl", "3"}, exitOK, ""},
		{"below", []string{"--max-vmpl", "0"}, exitRejected, "the SEV-SNP report is from VMPL 1, above the maximum VMPL 0"},
		{"below names fix", []string{"--max-vmpl", "0"}, exitRejected, "request the report from VMPL 0 or lower, or raise --max-vmpl to 1"},
		{"out of range", []string{"--max-vmpl", "4"}, exitUsage, `invalid --max-vmpl "4": use 0, 1, 2 or 3`},
		{"not a number", []string{"--max-vmpl", "one"}, exitUsage, `invalid --max-vmpl "one"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"verify", "--collateral", c.Dir, "--at", c.Expect.At}, tc.maximum...)
			out, err := runCloister(t, append(args, evidence)...)
			checkExitAndOutput(t, out, err, tc.code, tc.want)
		})
	}
}
