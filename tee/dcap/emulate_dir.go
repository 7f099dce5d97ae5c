package dcap

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cloister-dev/cloister/internal/emudir"
)

// EventLogFile is the name of the CC event log file that EmulateToDir
// writes for TDX.
const EventLogFile = "ccel.bin"

// EmulateToDir creates an emulator, writes one quote binding reportData and
// lays out dir for `cloister verify`. The files are quote.bin, collateral/
// (TCB Info, QE Identity, CRLs and their issuer certificates),
// dev-root/root.pem (the development root) and emulator/ (the keys, from
// Save, to reload with LoadEmulator). For TDX it also writes the guest's
// CC event log to EventLogFile, for --event-log.
func EmulateToDir(ctx context.Context, opts EmulatorOptions, reportData []byte, dir string) (*emudir.Paths, error) {
	e, err := NewEmulator(opts)
	if err != nil {
		return nil, err
	}

	collateral, err := e.CollateralFiles(time.Now())
	if err != nil {
		return nil, err
	}
	p := emudir.New(dir, "quote.bin", fileRoot)
	if err := p.Emulate(ctx, e, reportData, pemCert(e.root), collateral); err != nil {
		return nil, err
	}
	if opts.TEE == "tdx" {
		log, _ := emulatedEventLog()
		if err := emudir.WriteFile(filepath.Join(dir, EventLogFile), log, 0o644); err != nil {
			return nil, fmt.Errorf("writing the emulated event log: %w", err)
		}
	}
	return p, nil
}
