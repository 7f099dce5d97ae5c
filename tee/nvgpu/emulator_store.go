package nvgpu

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/emudir"
)

// Files that Save writes. Each certificate file has a key file beside it,
// named with a -key suffix. RootFile and RIMRootFile are the development
// roots, which a verifier needs as trust anchors.
const (
	RootFile       = "device-identity-ca.pem"
	RIMRootFile    = "rim-root-ca.pem"
	fileRoot       = RootFile
	fileIdentityCA = "gh100-identity-ca.pem"
	fileRIMRoot    = RIMRootFile
	fileRIMSigner  = "rim-signer.pem"
	fileEmulator   = "emulator.json"
)

// emulatorState is the JSON form of what Save writes beside the keys.
type emulatorState struct {
	GPUs int `json:"gpus"`
	// UUIDs are the GPUs' UUIDs, in order.
	UUIDs []string `json:"uuids"`
}

// storedCert is one certificate of a saved emulator with its key.
type storedCert struct {
	file string
	cert **x509.Certificate
	key  **ecdsa.PrivateKey
}

// storedCerts lists the certificates and keys of e, with their files,
// for Save and LoadEmulator. e.gpus must contain as many GPUs as are saved.
func (e *Emulator) storedCerts() []storedCert {
	out := []storedCert{
		{fileRoot, &e.root, &e.rootKey},
		{fileIdentityCA, &e.identityCA, &e.identityCAKey},
		{fileRIMRoot, &e.rimRoot, &e.rimRootKey},
		{fileRIMSigner, &e.rimSigner, &e.rimKey},
	}
	for i, g := range e.gpus {
		prefix := "gpu" + strconv.Itoa(i) + "-"
		out = append(out, storedCert{prefix + "brom.pem", &g.brom, &g.bromKey}, storedCert{prefix + "leaf.pem", &g.leaf, &g.leafKey})
	}
	return out
}

// keyFile returns the key file of a certificate file: a.pem gives
// a-key.pem.
func keyFile(certFile string) string {
	return certFile[:len(certFile)-len(filepath.Ext(certFile))] + "-key.pem"
}

// Save writes the certificates, the keys (mode 0600) and the GPUs' UUIDs
// to dir, creating it with mode 0700.
func (e *Emulator) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("nvgpu emulator: %w", err)
	}
	state := emulatorState{GPUs: len(e.gpus)}
	for _, g := range e.gpus {
		state.UUIDs = append(state.UUIDs, g.uuid)
	}
	stateJSON, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return err
	}
	if err := emudir.WriteFile(filepath.Join(dir, fileEmulator), append(stateJSON, '\n'), 0o644); err != nil {
		return fmt.Errorf("nvgpu emulator: %w", err)
	}
	for _, s := range e.storedCerts() {
		if err := emudir.WriteCert(filepath.Join(dir, s.file), *s.cert); err != nil {
			return fmt.Errorf("nvgpu emulator: %w", err)
		}
		if err := emudir.WriteKey(filepath.Join(dir, keyFile(s.file)), *s.key); err != nil {
			return fmt.Errorf("nvgpu emulator: %w", err)
		}
	}
	return nil
}

// LoadEmulator reloads an emulator that Save wrote. It checks that each
// key matches its certificate, that both roots are development roots, and
// that every GPU's leaf certificate carries the same FWID.
func LoadEmulator(dir string) (*Emulator, error) {
	statePath := filepath.Join(dir, fileEmulator)
	raw, err := os.ReadFile(statePath)
	if err != nil {
		return nil, fmt.Errorf("nvgpu emulator: %w", err)
	}
	var state emulatorState
	if err := json.Unmarshal(raw, &state); err != nil {
		return nil, fmt.Errorf("nvgpu emulator: %s: %w; create the emulator again", statePath, err)
	}
	if state.GPUs < 1 || state.GPUs > MaxEmulatedGPUs || len(state.UUIDs) != state.GPUs {
		return nil, fmt.Errorf("nvgpu emulator: %s lists %d GPUs and %d UUIDs, expected the same count from 1 to %d; create the emulator again",
			statePath, state.GPUs, len(state.UUIDs), MaxEmulatedGPUs)
	}

	e := &Emulator{opts: EmulatorOptions{GPUs: state.GPUs}}
	for _, uuid := range state.UUIDs {
		e.gpus = append(e.gpus, &emulatedGPU{uuid: uuid})
	}
	for _, s := range e.storedCerts() {
		if err := loadCertAndKey(dir, s); err != nil {
			return nil, err
		}
	}
	for _, root := range []*x509.Certificate{e.root, e.rimRoot} {
		if !attest.IsEmulated(root) {
			return nil, fmt.Errorf("nvgpu emulator: %q in %s is not a development root (its organization is not %q)", root.Subject.String(), dir, attest.EmulatedOrganization)
		}
	}
	if err := e.loadFWID(dir); err != nil {
		return nil, err
	}
	return e, nil
}

// loadFWID sets e.fwid from the GPUs' leaf certificates, which must agree.
func (e *Emulator) loadFWID(dir string) error {
	for i, g := range e.gpus {
		fwid, err := certFWID(g.leaf)
		if err != nil {
			return fmt.Errorf("nvgpu emulator: GPU %d leaf certificate in %s: %w", i, dir, err)
		}
		if e.fwid != nil && !bytes.Equal(fwid, e.fwid) {
			return fmt.Errorf("nvgpu emulator: the leaf certificates in %s carry different FWIDs; create the emulator again", dir)
		}
		e.fwid = fwid
	}
	return nil
}

// loadCertAndKey reads one certificate and its key from dir and checks
// that they match.
func loadCertAndKey(dir string, s storedCert) error {
	var err error
	*s.cert, *s.key, err = emudir.ReadCertAndKey[*ecdsa.PrivateKey](filepath.Join(dir, s.file), filepath.Join(dir, keyFile(s.file)))
	if err != nil {
		return fmt.Errorf("nvgpu emulator: %w; restore the file or create the emulator again", err)
	}
	return nil
}
