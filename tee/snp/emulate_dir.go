package snp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// EmulatedPaths names the files EmulateToDir wrote.
type EmulatedPaths struct {
	// Report is the report file.
	Report string
	// Collateral is the directory with the VCEK (or VLEK) and the ASK (or
	// ASVK), to pass as collateral.
	Collateral string
	// Root is the development ARK, to pass as a trust anchor.
	Root string
	// State is the directory with the emulator's keys (see LoadEmulator).
	State string
}

// EmulateToDir creates an emulator, writes one report binding reportData
// and lays out dir for `cloister verify`. The files are report.bin,
// collateral/ (the endorsement certificate and the ASK), dev-root/ark.pem
// and emulator/ (the keys, from Save). The ARK is kept apart because a
// development root is trusted only as an explicit trust anchor.
func EmulateToDir(ctx context.Context, opts EmulatorOptions, reportData []byte, dir string) (*EmulatedPaths, error) {
	e, err := NewEmulator(opts)
	if err != nil {
		return nil, err
	}
	ev, err := e.Attest(ctx, reportData)
	if err != nil {
		return nil, err
	}

	p := &EmulatedPaths{
		Report:     filepath.Join(dir, "report.bin"),
		Collateral: filepath.Join(dir, "collateral"),
		Root:       filepath.Join(dir, "dev-root", fileARK),
		State:      filepath.Join(dir, "emulator"),
	}
	for _, d := range []string{p.Collateral, filepath.Dir(p.Root)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("snp emulator: %w", err)
		}
	}

	leafName := "vcek.pem"
	askName := "ask.pem"
	if e.opts.SigningKey == "VLEK" {
		leafName, askName = "vlek.pem", "asvk.pem"
	}
	files := []struct {
		path string
		data []byte
	}{
		{p.Report, ev.Data},
		{filepath.Join(p.Collateral, leafName), pemCert(e.leaf)},
		{filepath.Join(p.Collateral, askName), pemCert(e.ask)},
		{p.Root, pemCert(e.ark)},
	}
	for _, f := range files {
		if err := writeFile(f.path, f.data, 0o644); err != nil {
			return nil, fmt.Errorf("snp emulator: %w", err)
		}
	}
	if err := e.Save(p.State); err != nil {
		return nil, err
	}
	return p, nil
}
