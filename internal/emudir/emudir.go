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
	if err := WriteFile(p.Evidence, evidence, 0o644); err != nil {
		return err
	}
	if err := WriteFile(p.Root, root, 0o644); err != nil {
		return err
	}
	for name, data := range collateral {
		if err := WriteFile(filepath.Join(p.Collateral, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes data to path with exactly mode. An existing file's mode
// is narrowed before any byte is written, so a private key never sits in a
// file that was readable by others.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
