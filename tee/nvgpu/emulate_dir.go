package nvgpu

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/cloister-dev/cloister/internal/emudir"
)

// EvidenceFile is the name of the evidence file that EmulateToDir writes.
const EvidenceFile = "gpu-evidence.json"

// EmulateToDir creates an emulator, writes the evidence of its GPUs for
// the 32-byte nonce and lays out dir for `cloister verify`. The files are
// EvidenceFile, collateral/ (the signed driver and VBIOS RIMs) and
// emulator/ (the keys, from Save, to reload with LoadEmulator). dev-root/
// contains the development Device Identity CA and RIM root, both needed as
// trust anchors. The returned Paths.Root is that directory, which
// --trust-anchor nvidia-gpu=DIR reads whole.
func EmulateToDir(ctx context.Context, opts EmulatorOptions, nonce []byte, dir string) (*emudir.Paths, error) {
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("nvgpu emulator: the nonce is %d bytes; pass a %d-byte SPDM nonce", len(nonce), NonceSize)
	}
	e, err := NewEmulator(opts)
	if err != nil {
		return nil, err
	}
	rims, err := e.RIMFiles()
	if err != nil {
		return nil, err
	}

	p := emudir.New(dir, EvidenceFile, fileRoot)
	if err := p.Emulate(ctx, e, nonce, pemCert(e.root), rims); err != nil {
		return nil, err
	}
	rimRoot := filepath.Join(filepath.Dir(p.Root), fileRIMRoot)
	if err := emudir.WriteCert(rimRoot, e.rimRoot); err != nil {
		return nil, fmt.Errorf("writing the development RIM root: %w", err)
	}
	p.Root = filepath.Dir(p.Root)
	return p, nil
}
