package tpm

import (
	"context"
	"errors"
	"io"
	"os"
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
