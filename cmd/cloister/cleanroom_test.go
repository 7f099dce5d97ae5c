package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCleanroomCommands(t *testing.T) {
	example := filepath.Join("..", "..", "examples", "cleanroom")
	manifest := filepath.Join(example, "manifest.json")
	teeDir := filepath.Join(t.TempDir(), "tee")

	out, err := runCloister(t, "cleanroom", "emulate", "--manifest", manifest, "--emulator-dir", teeDir)
	if err != nil {
		t.Fatalf("cleanroom emulate: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`measurement: +([0-9a-f]{96})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("cleanroom emulate printed no measurement:\n%s", out)
	}
	measurement := m[1]

	addr := freeAddr(t)
	serve := startServe(t, "cleanroom", "serve", "--manifest", manifest, "--emulated", "--emulator-dir", teeDir,
		"--listen", addr, "--log-level", "error")

	party := func(name string) []string {
		return []string{"--manifest", manifest, "--addr", addr, "--measurement", measurement,
			"--trust-anchor", filepath.Join(teeDir, "ark.pem"), "--allow-emulated",
			"--party", name, "--key", filepath.Join(example, "keys", name+".pem")}
	}
	runSteps(t, []commandStep{
		{"upload bank-a", append([]string{"cleanroom", "upload", "--table", "bank_a_fraud", filepath.Join(example, "bank_a_fraud.csv")}, party("bank-a")...), exitOK, "uploaded 400 rows"},
		{"result too early", append([]string{"cleanroom", "result"}, party("bank-a")...), exitRejected, "waiting for bank_b_fraud"},
		{"upload wrong table", append([]string{"cleanroom", "upload", "--table", "bank_a_fraud", filepath.Join(example, "bank_a_fraud.csv")}, party("bank-b")...), exitRejected, `belongs to party "bank-a"`},
		{"other measurement", append(append([]string{"cleanroom", "status"}, party("bank-b")...), "--measurement", strings.Repeat("00", 48)), exitRejected, "measurement"},
		{"upload bank-b", append([]string{"cleanroom", "upload", "--table", "bank_b_fraud", filepath.Join(example, "bank_b_fraud.csv")}, party("bank-b")...), exitOK, "uploaded 400 rows"},
		{"result bank-a", append([]string{"cleanroom", "result"}, party("bank-a")...), exitOK, `"suppressed_groups": 2`},
		{"result bank-b", append([]string{"cleanroom", "result"}, party("bank-b")...), exitOK, `"M-007"`},
	})

	select {
	case <-serve.done:
		if serve.err != nil {
			t.Fatalf("cleanroom serve: %v", serve.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cleanroom serve did not exit after every recipient read the result")
	}
	if !strings.Contains(serve.out.String(), "clean room closed") {
		t.Errorf("cleanroom serve did not report the erasure:\n%s", serve.out.String())
	}
}

func TestCleanroomHashPrintsDigest(t *testing.T) {
	manifest := filepath.Join("..", "..", "examples", "cleanroom", "manifest.json")
	out, err := runCloister(t, "cleanroom", "hash", "--manifest", manifest)
	if err != nil {
		t.Fatalf("cleanroom hash: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(out) {
		t.Errorf("cleanroom hash printed %q, want 64 hex digits", out)
	}
}
