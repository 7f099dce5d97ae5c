package dcap

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
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
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("dcap emulator: encoding %s: %w", name, err)
		}
		if err := emudir.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
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
	certs := []struct {
		name string
		cert **x509.Certificate
		file string
		key  **ecdsa.PrivateKey
	}{
		{"root", &e.root, fileRootKey, &e.rootKey},
		{"PCK CA", &e.pckCA, filePCKCAKey, &e.pckCAKey},
		{"PCK", &e.pck, filePCKKey, &e.pckKey},
		{"TCB signing", &e.tcbSigner, fileTCBKey, &e.tcbSignerKey},
	}
	certFiles := []string{fileRoot, filePCKCA, filePCK, fileTCBSigner}
	for i, c := range certs {
		if *c.cert, err = readCert(filepath.Join(dir, certFiles[i])); err != nil {
			return nil, err
		}
		if *c.key, err = readKey(filepath.Join(dir, c.file)); err != nil {
			return nil, err
		}
		if !(*c.key).PublicKey.Equal((*c.cert).PublicKey) {
			return nil, fmt.Errorf("dcap emulator: the key in %s does not match the %s certificate", c.file, c.name)
		}
	}

	if e.attestationKey, err = readKey(filepath.Join(dir, fileAttestKey)); err != nil {
		return nil, err
	}
	if !attest.IsEmulated(e.root) {
		return nil, fmt.Errorf("dcap emulator: %s is not a development root (its organization is not %q)", filepath.Join(dir, fileRoot), attest.EmulatedOrganization)
	}
	return e, nil
}

func readPEMBlock(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dcap emulator: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("dcap emulator: %s contains no %s PEM block", path, typ)
	}
	return block.Bytes, nil
}

func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEMBlock(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("dcap emulator: %s: %w", path, err)
	}
	return cert, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	der, err := readPEMBlock(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("dcap emulator: %s: %w", path, err)
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("dcap emulator: %s contains a %T, expected an ECDSA key", path, key)
	}
	return k, nil
}
