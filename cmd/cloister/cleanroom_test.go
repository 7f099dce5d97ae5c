package main

import (
	"bytes"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that a running command and the test can
// use at the same time.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

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
	serveOut := &syncBuffer{}
	served := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(serveOut)
		root.SetErr(serveOut)
		root.SetArgs([]string{"cleanroom", "serve", "--manifest", manifest, "--emulated", "--emulator-dir", teeDir,
			"--listen", addr, "--log-level", "error"})
		served <- root.Execute()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(serveOut.String(), "serving on") {
		if time.Now().After(deadline) {
			t.Fatalf("cleanroom serve did not start:\n%s", serveOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	party := func(name string) []string {
		return []string{"--manifest", manifest, "--addr", addr, "--measurement", measurement,
			"--trust-anchor", filepath.Join(teeDir, "ark.pem"), "--allow-emulated",
			"--party", name, "--key", filepath.Join(example, "keys", name+".pem")}
	}
	steps := []struct {
		name     string
		args     []string
		exitCode int
		contains string
	}{
		{"upload bank-a", append([]string{"cleanroom", "upload", "--table", "bank_a_fraud", filepath.Join(example, "bank_a_fraud.csv")}, party("bank-a")...), exitOK, "uploaded 400 rows"},
		{"result too early", append([]string{"cleanroom", "result"}, party("bank-a")...), exitRejected, "waiting for bank_b_fraud"},
		{"upload wrong table", append([]string{"cleanroom", "upload", "--table", "bank_a_fraud", filepath.Join(example, "bank_a_fraud.csv")}, party("bank-b")...), exitRejected, `belongs to party "bank-a"`},
		{"other measurement", append(append([]string{"cleanroom", "status"}, party("bank-b")...), "--measurement", strings.Repeat("00", 48)), exitRejected, "measurement"},
		{"upload bank-b", append([]string{"cleanroom", "upload", "--table", "bank_b_fraud", filepath.Join(example, "bank_b_fraud.csv")}, party("bank-b")...), exitOK, "uploaded 400 rows"},
		{"result bank-a", append([]string{"cleanroom", "result"}, party("bank-a")...), exitOK, `"suppressed_groups": 2`},
		{"result bank-b", append([]string{"cleanroom", "result"}, party("bank-b")...), exitOK, `"M-007"`},
	}
	for _, s := range steps {
		out, err := runCloister(t, s.args...)
		if code := exitCode(t, err); code != s.exitCode {
			t.Fatalf("%s: exit code %d, want %d:\n%s", s.name, code, s.exitCode, out)
		}
		if err != nil {
			// main prints the error after the output.
			out += "cloister: " + err.Error()
		}
		if !strings.Contains(out, s.contains) {
			t.Errorf("%s: output lacks %q:\n%s", s.name, s.contains, out)
		}
	}

	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("cleanroom serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cleanroom serve did not exit after every recipient read the result")
	}
	if !strings.Contains(serveOut.String(), "clean room closed") {
		t.Errorf("cleanroom serve did not report the erasure:\n%s", serveOut.String())
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
