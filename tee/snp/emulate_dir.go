package snp

import (
	"context"

	"github.com/cloister-dev/cloister/internal/emudir"
)

// EmulateToDir creates an emulator, writes one report binding reportData
// and lays out dir for `cloister verify`. The files are report.bin,
// collateral/ (the VCEK and the ASK, or the VLEK and the ASVK),
// dev-root/ark.pem (the development ARK) and emulator/ (the keys, from
// Save, to reload with LoadEmulator).
func EmulateToDir(ctx context.Context, opts EmulatorOptions, reportData []byte, dir string) (*emudir.Paths, error) {
	e, err := NewEmulator(opts)
	if err != nil {
		return nil, err
	}

	leafName, askName := "vcek.pem", "ask.pem"
	if e.opts.SigningKey == "VLEK" {
		leafName, askName = "vlek.pem", "asvk.pem"
	}
	collateral := map[string][]byte{
		leafName: pemCert(e.leaf),
		askName:  pemCert(e.ask),
	}
	p := emudir.New(dir, "report.bin", fileARK)
	if err := p.Emulate(ctx, e, reportData, pemCert(e.ark), collateral); err != nil {
		return nil, err
	}
	return p, nil
}
