package dcap

import (
	"context"
	"time"

	"github.com/cloister-dev/cloister/internal/emudir"
)

// EmulateToDir creates an emulator, writes one quote binding reportData and
// lays out dir for `cloister verify`. The files are quote.bin, collateral/
// (TCB Info, QE Identity, CRLs and their issuer certificates),
// dev-root/root.pem (the development root) and emulator/ (the keys, from
// Save, to reload with LoadEmulator).
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
	return p, nil
}
