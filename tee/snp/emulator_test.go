package snp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/attest"
)

func TestEmulatorSaveLoad(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{SigningKey: "VLEK"})
	dir := filepath.Join(t.TempDir(), "state")
	if err := e.Save(dir); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for _, name := range []string{fileARKKey, fileASKKey, fileLeafKey} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", name, mode)
		}
	}

	loaded, err := LoadEmulator(dir)
	if err != nil {
		t.Fatalf("LoadEmulator: %v", err)
	}
	if !loaded.Root().Equal(e.Root()) {
		t.Error("the loaded emulator has another root")
	}
	ev, err := loaded.Attest(context.Background(), []byte("reloaded"))
	if err != nil {
		t.Fatal(err)
	}
	// The reloaded emulator's reports verify under the original root.
	claims, err := attest.Verify(context.Background(), *ev, emulatedOptions(e))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.SigningKey != "VLEK" || claims.ChipID.String() != attest.Hex(e.chipID[:]).String() {
		t.Errorf("claims signing key %s, chip ID %s; want VLEK and the saved chip ID", claims.SigningKey, claims.ChipID)
	}
}

func TestLoadEmulatorMismatchedKey(t *testing.T) {
	a := sharedEmulator(t, EmulatorOptions{})
	b := sharedEmulator(t, EmulatorOptions{Product: ProductGenoa})
	dirB := t.TempDir()
	if err := b.Save(dirB); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		certFile, keyFile string
	}{
		{fileARK, fileARKKey},
		{fileASK, fileASKKey},
		{fileLeaf, fileLeafKey},
	}
	for _, tt := range tests {
		t.Run(tt.keyFile, func(t *testing.T) {
			dirA := t.TempDir()
			if err := a.Save(dirA); err != nil {
				t.Fatal(err)
			}
			key, err := os.ReadFile(filepath.Join(dirB, tt.keyFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dirA, tt.keyFile), key, 0o600); err != nil {
				t.Fatal(err)
			}

			_, err = LoadEmulator(dirA)
			if err == nil {
				t.Fatal("LoadEmulator accepted a key that does not match its certificate")
			}
			msg := err.Error()
			if !strings.Contains(msg, "does not match") {
				t.Errorf("error %q does not report the mismatch", msg)
			}
			if !strings.Contains(msg, filepath.Join(dirA, tt.keyFile)) {
				t.Errorf("error %q does not name the key file", msg)
			}
			if !strings.Contains(msg, filepath.Join(dirA, tt.certFile)) {
				t.Errorf("error %q does not name the certificate file", msg)
			}
			if !strings.Contains(msg, "create the emulator again") {
				t.Errorf("error %q does not name the fix", msg)
			}
		})
	}
}

func TestEmulatorOptionsRejected(t *testing.T) {
	tests := []struct {
		name string
		opts EmulatorOptions
	}{
		{"unknown product", EmulatorOptions{Product: "Naples"}},
		{"unknown signing key", EmulatorOptions{SigningKey: "VCEK2"}},
		{"short measurement", EmulatorOptions{Measurement: make([]byte, 32)}},
		{"long host data", EmulatorOptions{HostData: make([]byte, 33)}},
		{"policy without bit 17", EmulatorOptions{Policy: 0x10000}},
		{"policy with reserved bit 26", EmulatorOptions{Policy: 0x30000 | 1<<26}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewEmulator(tc.opts); err == nil {
				t.Errorf("NewEmulator(%+v) succeeded", tc.opts)
			}
		})
	}
}

func TestEmulatorReportFields(t *testing.T) {
	e := sharedEmulator(t, EmulatorOptions{})
	if _, err := e.Attest(context.Background(), make([]byte, 65)); err == nil {
		t.Error("Attest accepted 65 bytes of report data")
	}
	ev, err := e.Attest(context.Background(), []byte{0xaa})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Format != "snp" || e.Name() != "emulated-snp" {
		t.Errorf("format %q, name %q; want snp and emulated-snp", ev.Format, e.Name())
	}
	r, err := ParseReport(ev.Data)
	if err != nil {
		t.Fatalf("ParseReport: %v", err)
	}
	if r.Version != 3 || !r.HasCPUID || r.ReportData[0] != 0xaa || r.Debug() {
		t.Errorf("report version %d, CPUID %v, report data %x, debug %v", r.Version, r.HasCPUID, r.ReportData[:1], r.Debug())
	}
	if r.ReportedTCB != e.tcb || r.ChipID != e.chipID {
		t.Error("REPORTED_TCB or CHIP_ID differs from the emulated platform's")
	}
	for _, c := range e.Collateral().Certificates() {
		if c.Equal(e.Root()) {
			t.Error("Collateral holds the development root")
		}
	}
}

func TestEmulateToDir(t *testing.T) {
	dir := t.TempDir()
	paths, err := EmulateToDir(context.Background(), EmulatorOptions{}, []byte{1, 2}, dir)
	if err != nil {
		t.Fatalf("EmulateToDir: %v", err)
	}
	for _, p := range []string{paths.Evidence, filepath.Join(paths.Collateral, "vcek.pem"), filepath.Join(paths.Collateral, "ask.pem"), paths.Root} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(paths.Collateral, fileARK)); err == nil {
		t.Error("the collateral directory holds the development root")
	}
	if _, err := LoadEmulator(paths.State); err != nil {
		t.Errorf("LoadEmulator(%s): %v", paths.State, err)
	}
}
