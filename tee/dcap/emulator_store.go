package dcap

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/emudir"
)

// File names that Save writes.
const (
	fileRoot        = "root.pem"
	filePCKCA       = "pck_ca.pem"
	filePCK         = "pck.pem"
	fileTCBSigner   = "tcb_signing.pem"
	fileRootKey     = "root_key.pem"
	filePCKCAKey    = "pck_ca_key.pem"
	filePCKKey      = "pck_key.pem"
	fileTCBKey      = "tcb_signing_key.pem"
	fileAttestKey   = "attestation_key.pem"
	fileEmulatorCfg = "emulator.json"
)

type emulatorState struct {
	TEE          string     `json:"tee"`
	Debug        bool       `json:"debug"`
	Measurement  attest.Hex `json:"measurement"`
	QuoteVersion int        `json:"quote_version"`
}

// Save writes the certificates, the keys (mode 0600) and the options to
// dir, creating it with mode 0700.
func (e *Emulator) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dcap emulator: %w", err)
	}
	state, err := json.MarshalIndent(emulatorState{e.opts.TEE, e.opts.Debug, e.opts.Measurement, e.opts.QuoteVersion}, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		fileRoot: pemCert(e.root), filePCKCA: pemCert(e.pckCA), filePCK: pemCert(e.pck), fileTCBSigner: pemCert(e.tcbSigner),
		fileEmulatorCfg: append(state, '\n'),
	}
	for name, data := range files {
		if err := emudir.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("dcap emulator: %w", err)
		}
	}
	keys := map[string]*ecdsa.PrivateKey{
		fileRootKey: e.rootKey, filePCKCAKey: e.pckCAKey, filePCKKey: e.pckKey, fileTCBKey: e.tcbSignerKey, fileAttestKey: e.attestationKey,
	}
	for name, key := range keys {
		if err := emudir.WriteKey(filepath.Join(dir, name), key); err != nil {
			return fmt.Errorf("dcap emulator: %w", err)
		}
	}
	return nil
}

// LoadEmulator reloads an emulator saved by Save and checks that each key
// matches its certificate.
func LoadEmulator(dir string) (*Emulator, error) {
	raw, err := os.ReadFile(filepath.Join(dir, fileEmulatorCfg))
	if err != nil {
		return nil, fmt.Errorf("dcap emulator: %w", err)
	}
	var state emulatorState
	if err := json.Unmarshal(raw, &state); err != nil {
		return nil, fmt.Errorf("dcap emulator: %s: %w", fileEmulatorCfg, err)
	}
	opts := EmulatorOptions{TEE: state.TEE, Debug: state.Debug, Measurement: state.Measurement, QuoteVersion: state.QuoteVersion}
	if err := opts.normalize(); err != nil {
		return nil, err
	}

	e := &Emulator{opts: opts}
	pairs := []struct {
		certFile string
		cert     **x509.Certificate
		keyFile  string
		key      **ecdsa.PrivateKey
	}{
		{fileRoot, &e.root, fileRootKey, &e.rootKey},
		{filePCKCA, &e.pckCA, filePCKCAKey, &e.pckCAKey},
		{filePCK, &e.pck, filePCKKey, &e.pckKey},
		{fileTCBSigner, &e.tcbSigner, fileTCBKey, &e.tcbSignerKey},
	}
	for _, p := range pairs {
		*p.cert, *p.key, err = emudir.ReadCertAndKey[*ecdsa.PrivateKey](filepath.Join(dir, p.certFile), filepath.Join(dir, p.keyFile))
		if err != nil {
			return nil, fmt.Errorf("dcap emulator: %w; restore the file or create the emulator again", err)
		}
	}

	if e.attestationKey, err = emudir.ReadKey[*ecdsa.PrivateKey](filepath.Join(dir, fileAttestKey)); err != nil {
		return nil, fmt.Errorf("dcap emulator: %w", err)
	}
	if !attest.IsEmulated(e.root) {
		return nil, fmt.Errorf("dcap emulator: %s is not a development root (its organization is not %q)", filepath.Join(dir, fileRoot), attest.EmulatedOrganization)
	}
	return e, nil
}
