// Package emudir lays out the output directory of an emulated TEE so that
// `cloister verify` can check the evidence in it: the evidence file,
// collateral/ for --collateral, dev-root/ for --trust-anchor and emulator/
// for the emulator's saved keys. The development root is kept apart from
// the collateral because Cloister trusts a development root only when it
// is passed explicitly as a trust anchor.
package emudir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cloister-dev/cloister/attest"
)

// Paths names the files and directories of an emulated TEE's output.
type Paths struct {
	// Evidence is the evidence file, such as a report or a quote.
	Evidence string
	// Collateral is the directory to pass with --collateral.
	Collateral string
	// Root is the development root certificate to pass with
	// --trust-anchor.
	Root string
	// State is the directory for the emulator's keys and certificates.
	State string
}

// New returns the paths under dir: dir/evidenceName, dir/collateral,
// dir/dev-root/rootName and dir/emulator.
func New(dir, evidenceName, rootName string) *Paths {
	return &Paths{
		Evidence:   filepath.Join(dir, evidenceName),
		Collateral: filepath.Join(dir, "collateral"),
		Root:       filepath.Join(dir, "dev-root", rootName),
		State:      filepath.Join(dir, "emulator"),
	}
}

// Emulator is an emulated TEE whose evidence and keys Emulate writes.
type Emulator interface {
	Attest(ctx context.Context, reportData []byte) (*attest.Evidence, error)
	// Save writes the emulator's keys and certificates to dir.
	Save(dir string) error
}

// Emulate takes evidence binding reportData from e, writes it with the
// development root and the collateral files (see Write), and saves e's keys
// to State.
func (p *Paths) Emulate(ctx context.Context, e Emulator, reportData, root []byte, collateral map[string][]byte) error {
	ev, err := e.Attest(ctx, reportData)
	if err != nil {
		return err
	}
	if err := p.Write(ev.Data, root, collateral); err != nil {
		return fmt.Errorf("writing the emulated evidence: %w", err)
	}
	return e.Save(p.State)
}

// Write creates the directories and writes the evidence, the development
// root and each collateral file, keyed by its name in the collateral
// directory. Every file gets mode 0644, also when it existed before. The
// emulator writes State itself.
func (p *Paths) Write(evidence, root []byte, collateral map[string][]byte) error {
	for _, d := range []string{p.Collateral, filepath.Dir(p.Root)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := writeFile(p.Evidence, evidence); err != nil {
		return err
	}
	if err := writeFile(p.Root, root); err != nil {
		return err
	}
	for name, data := range collateral {
		if err := writeFile(filepath.Join(p.Collateral, name), data); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes data with mode 0644. The chmod sets the mode of a file
// that existed before, which os.WriteFile leaves unchanged.
func writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	return os.Chmod(path, 0o644)
}
