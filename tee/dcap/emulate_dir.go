package dcap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// EmulatedPaths are the files EmulateToDir writes.
type EmulatedPaths struct {
	Quote      string
	Collateral string
	Root       string
	State      string
}

// EmulateToDir creates an emulator, writes one quote binding reportData and
// lays out dir for `cloister verify`. It writes quote.bin, collateral/ (TCB
// Info, QE Identity, CRLs and their issuer certificates) and emulator/ (the
// keys, from Save). The root goes to dev-root/root.pem, apart from the
// collateral, because a development root counts only as a trust anchor.
func EmulateToDir(ctx context.Context, opts EmulatorOptions, reportData []byte, dir string) (*EmulatedPaths, error) {
	e, err := NewEmulator(opts)
	if err != nil {
		return nil, err
	}
	ev, err := e.Attest(ctx, reportData)
	if err != nil {
		return nil, err
	}

	files, err := e.CollateralFiles(time.Now())
	if err != nil {
		return nil, err
	}
	p := &EmulatedPaths{
		Quote:      filepath.Join(dir, "quote.bin"),
		Collateral: filepath.Join(dir, "collateral"),
		Root:       filepath.Join(dir, "dev-root", fileRoot),
		State:      filepath.Join(dir, "emulator"),
	}

	for _, d := range []string{p.Collateral, filepath.Dir(p.Root)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("dcap emulator: %w", err)
		}
	}
	if err := writeFile(p.Quote, ev.Data, 0o644); err != nil {
		return nil, fmt.Errorf("dcap emulator: %w", err)
	}
	if err := writeFile(p.Root, pemCert(e.root), 0o644); err != nil {
		return nil, fmt.Errorf("dcap emulator: %w", err)
	}
	for name, data := range files {
		if err := writeFile(filepath.Join(p.Collateral, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("dcap emulator: %w", err)
		}
	}
	if err := e.Save(p.State); err != nil {
		return nil, err
	}
	return p, nil
}
