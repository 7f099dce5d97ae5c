package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/internal/syncbuf"
)

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

// runningCommand is a serve command running in the background.
type runningCommand struct {
	name   string // command words before the first flag, for messages
	out    *syncbuf.Buffer
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// startServe runs the serve command args in the background until it
// prints "serving on", and stops it when the test ends.
func startServe(t *testing.T, args ...string) *runningCommand {
	t.Helper()
	printedServing := func(rc *runningCommand) bool { return strings.Contains(rc.out.String(), "serving on") }
	return startCommand(t, printedServing, args...)
}

// startCommand runs the command args in the background until ready
// returns true, and stops it when the test ends. It fails the test when the
// command exits first or is not ready within 30 seconds.
func startCommand(t *testing.T, ready func(*runningCommand) bool, args ...string) *runningCommand {
	t.Helper()
	words := args
	if i := slices.IndexFunc(args, func(arg string) bool { return strings.HasPrefix(arg, "-") }); i >= 0 {
		words = args[:i]
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningCommand{name: strings.Join(words, " "), out: &syncbuf.Buffer{}, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(rc.done)
		root := newRootCmd()
		root.SetOut(rc.out)
		root.SetErr(rc.out)
		root.SetArgs(args)
		rc.err = root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() { rc.stop(t) })

	deadline := time.Now().Add(30 * time.Second)
	for !ready(rc) {
		select {
		case <-rc.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", rc.name, rc.err, rc.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30 s:\n%s", rc.name, rc.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return rc
}

// stop cancels the command and waits up to 10 seconds for it to exit,
// failing the test when it does not. It returns the command's error, and
// returns it again when called again.
func (rc *runningCommand) stop(t *testing.T) error {
	t.Helper()
	rc.cancel()
	select {
	case <-rc.done:
		return rc.err
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not stop within 10 s of its context's cancellation", rc.name)
		return nil
	}
}

// commandStep is one party command and its expected result.
type commandStep struct {
	name     string
	args     []string
	exitCode int
	contains string
}

func runSteps(t *testing.T, steps []commandStep) {
	t.Helper()
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
}

// keygen runs cloister aggregate keygen and returns the key file and the
// printed key digest.
func keygen(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name+".pem")
	out, err := runCloister(t, "aggregate", "keygen", "--out", path)
	if err != nil {
		t.Fatalf("keygen %s: %v\n%s", name, err, out)
	}
	return path, strings.TrimSpace(out)
}

func TestAggregateCommands(t *testing.T) {
	dir := t.TempDir()
	aliceKey, aliceHash := keygen(t, dir, "alice")
	bobKey, bobHash := keygen(t, dir, "bob")
	eveKey, _ := keygen(t, dir, "eve")

	if out, err := runCloister(t, "aggregate", "keygen", "--out", aliceKey); exitCode(t, err) != exitUsage {
		t.Errorf("keygen over an existing key: exit code %d, want %d:\n%s", exitCode(t, err), exitUsage, out)
	}

	manifest := filepath.Join(dir, "federation.json")
	raw := `{"name": "fl", "dimension": 2, "min_clients": 2, "parties": [` +
		`{"name": "alice", "key_sha256": "` + aliceHash + `"}, {"name": "bob", "key_sha256": "` + bobHash + `"}]}`
	if err := os.WriteFile(manifest, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	update := filepath.Join(dir, "update.json")
	if err := os.WriteFile(update, []byte(`[1, 3]`), 0o600); err != nil {
		t.Fatal(err)
	}

	measurement := strings.Repeat("ab", 48)
	teeDir := filepath.Join(dir, "tee")
	addr := freeAddr(t)
	serve := startServe(t, "aggregate", "serve", "--manifest", manifest, "--emulated", "--emulator-dir", teeDir,
		"--measurement", measurement, "--listen", addr, "--log-level", "error")
	if out := serve.out.String(); !strings.Contains(out, "EMULATED") || !strings.Contains(out, measurement) {
		t.Errorf("aggregate serve does not print the emulated TEE and its measurement:\n%s", out)
	}

	party := func(key string) []string {
		return []string{"--manifest", manifest, "--addr", addr, "--measurement", measurement,
			"--trust-anchor", filepath.Join(teeDir, "ark.pem"), "--allow-emulated", "--key", key}
	}
	runSteps(t, []commandStep{
		{"status", append([]string{"aggregate", "status"}, party(aliceKey)...), exitOK, `"round": 1`},
		{"submit bob", append([]string{"aggregate", "submit", "--round", "1", update}, party(bobKey)...), exitOK, "submitted an update of 2 values to round 1"},
		{"close too early", append([]string{"aggregate", "close", "--round", "1"}, party(aliceKey)...), exitRejected, "too few parties"},
		{"submit alice", append([]string{"aggregate", "submit", "--round", "1", update}, party(aliceKey)...), exitOK, "round 1"},
		{"close", append([]string{"aggregate", "close", "--round", "1"}, party(aliceKey)...), exitOK, `"contributors": 2`},
		{"result", append([]string{"aggregate", "result", "1"}, party(bobKey)...), exitOK, `"mean"`},
		{"stranger", append([]string{"aggregate", "status"}, party(eveKey)...), exitRejected, "rejected this party's key"},
		{"no emulated allowed", []string{"aggregate", "status", "--manifest", manifest, "--addr", addr, "--measurement", measurement,
			"--trust-anchor", filepath.Join(teeDir, "ark.pem"), "--key", aliceKey}, exitRejected, "emulated"},
		{"no measurement", []string{"aggregate", "status", "--manifest", manifest, "--key", aliceKey}, exitUsage, "--measurement is required"},
	})
}

func TestWorkloadHashRejectsOtherManifest(t *testing.T) {
	manifest := filepath.Join("..", "..", "examples", "cleanroom", "manifest.json")
	for _, cmd := range []string{"aggregate", "custody", "modelserve"} {
		out, err := runCloister(t, cmd, "hash", "--manifest", manifest)
		if code := exitCode(t, err); code != exitUsage {
			t.Errorf("%s hash of a clean-room manifest: exit code %d, want %d:\n%s", cmd, code, exitUsage, out)
		}
	}
	out, err := runCloister(t, "cleanroom", "hash")
	if code := exitCode(t, err); code != exitUsage {
		t.Fatalf("cleanroom hash without --manifest: exit code %d, want %d:\n%s", code, exitUsage, out)
	}
	if !strings.Contains(err.Error(), "--manifest is required") {
		t.Errorf("cleanroom hash without --manifest: %v, want an error naming --manifest", err)
	}
}
