package ear

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"

	"github.com/cloister-dev/cloister/internal/keyfile"
)

// KeyFile is the name of the signing key file in the data directory.
const KeyFile = "ear-signing-key.pem"

// LoadOrCreateKey reads the P-256 signing key from dir/KeyFile, or
// generates one and writes it there with mode 0600 when the file does not
// exist, and then returns created true. An existing file that is readable
// by group or others is rejected, because anyone who reads it can forge
// attestation results.
func LoadOrCreateKey(dir string) (key *ecdsa.PrivateKey, created bool, err error) {
	path := filepath.Join(dir, KeyFile)
	data, created, err := keyfile.LoadOrCreate(path, generateKey)
	if err != nil {
		return nil, false, fmt.Errorf("EAR signing key: %w", err)
	}
	key, err = parseKey(path, data)
	return key, created, err
}

// generateKey returns a new P-256 key as a PEM PRIVATE KEY.
func generateKey() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseKey(path string, data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("EAR signing key %s is not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("EAR signing key %s: %w", path, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("EAR signing key %s is not a P-256 key; remove it to generate a new one", path)
	}
	return ec, nil
}
