package tpm

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-tpm-tools/simulator"

	"github.com/cloister-dev/cloister/attest"
)

func TestOpenWithoutDevice(t *testing.T) {
	if _, err := os.Stat(DevicePath); err == nil {
		t.Skipf("%s exists on this machine", DevicePath)
	}
	if _, err := Open(); !errors.Is(err, attest.ErrNoDevice) {
		t.Fatalf("Open() error = %v, want ErrNoDevice", err)
	}
}

// keepOpen hands out one simulator for every attestation and lets the
// test close it.
type keepOpen struct{ io.ReadWriter }

func (keepOpen) Close() error { return nil }

// TestAttesterSimulator attests with the Microsoft reference TPM simulator
// that go-tpm-tools links with cgo and verifies the result with the AK
// pinned.
func TestAttesterSimulator(t *testing.T) {
	sim, err := simulator.Get()
	if err != nil {
		t.Skipf("TPM simulator unavailable (it needs cgo): %v", err)
	}
	defer sim.Close()

	a := NewAttester(func() (io.ReadWriteCloser, error) { return keepOpen{sim}, nil })
	nonce := []byte("attester test nonce")
	ev, err := a.Attest(context.Background(), nonce)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if ev.Format != "tpm" {
		t.Errorf("format = %q, want tpm", ev.Format)
	}
	parsed, err := ParseEvidence(ev.Data)
	if err != nil {
		t.Fatalf("ParseEvidence: %v", err)
	}
	claims, err := Verifier{}.Verify(context.Background(), *ev, attest.Options{Collateral: pinnedSet(t, parsed.AKKey), Nonce: nonce})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if string(claims.Nonce) != string(nonce) {
		t.Errorf("nonce = %q, want %q", claims.Nonce, nonce)
	}
	if _, ok := claims.Measurements["pcr0"]; !ok {
		t.Error("no pcr0 measurement")
	}
	// The simulator's AK lives in the owner hierarchy, so the TPM
	// obfuscates firmwareVersion and the software-TPM label cannot apply.
	if claims.TrustAnchor.Kind != attest.AnchorCallerKey {
		t.Errorf("trust anchor kind = %s, want %s", claims.TrustAnchor.Kind, attest.AnchorCallerKey)
	}

	if _, err := a.Attest(context.Background(), make([]byte, 67)); err == nil {
		t.Error("Attest accepted a 67-byte nonce")
	}
	if _, err := a.Attest(context.Background(), nil); err == nil {
		t.Error("Attest accepted an empty nonce")
	}
}

// simulatorAttester returns an attester on the TPM simulator that reads
// its event log from eventLogPath.
func simulatorAttester(t *testing.T, eventLogPath string) *Attester {
	t.Helper()
	sim, err := simulator.Get()
	if err != nil {
		t.Skipf("TPM simulator unavailable (it needs cgo): %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	a := NewAttester(func() (io.ReadWriteCloser, error) { return keepOpen{sim}, nil })
	a.eventLogPath = eventLogPath
	return a
}

// A machine without a measured boot has no event log file, and the quote
// goes without one.
func TestAttesterEventLogMissing(t *testing.T) {
	a := simulatorAttester(t, filepath.Join(t.TempDir(), "binary_bios_measurements"))
	ev, err := a.Attest(context.Background(), []byte("event log nonce"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	parsed, err := ParseEvidence(ev.Data)
	if err != nil {
		t.Fatalf("ParseEvidence: %v", err)
	}
	if n := len(parsed.EventLog); n != 0 {
		t.Errorf("event log of %d bytes, want none", n)
	}
}

// The event log file's bytes travel in the attestation.
func TestAttesterEventLogRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "binary_bios_measurements")
	if err := os.WriteFile(path, []byte("event log bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := simulatorAttester(t, path)
	ev, err := a.Attest(context.Background(), []byte("event log nonce"))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	parsed, err := ParseEvidence(ev.Data)
	if err != nil {
		t.Fatalf("ParseEvidence: %v", err)
	}
	if got := string(parsed.EventLog); got != "event log bytes" {
		t.Errorf("event log %q, want the file's bytes", got)
	}
}

// An event log that exists but cannot be read fails the attestation, so
// that the verifier does not report its replay as not checked.
func TestAttesterEventLogUnreadable(t *testing.T) {
	// Reading a directory fails with EISDIR, as a file fails with EACCES
	// for a user without read access.
	path := t.TempDir()
	a := simulatorAttester(t, path)
	ev, err := a.Attest(context.Background(), []byte("event log nonce"))
	if err == nil {
		t.Fatalf("Attest returned %d bytes of evidence without the unreadable event log", len(ev.Data))
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path %s", err, path)
	}
	if !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("error %q does not contain the read error", err)
	}
}

func TestEventLogErrorPermission(t *testing.T) {
	path := "/sys/kernel/security/tpm0/binary_bios_measurements"
	err := eventLogError(path, &fs.PathError{Op: "open", Path: path, Err: syscall.EACCES})
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	if !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("error %q does not contain the read error", err)
	}
	if !strings.Contains(err.Error(), "run as root") {
		t.Errorf("error %q does not say to run as root", err)
	}
	if !strings.Contains(err.Error(), "read access") {
		t.Errorf("error %q does not say to grant read access", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("error %q does not wrap fs.ErrPermission", err)
	}
}
