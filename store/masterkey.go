package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloister-dev/cloister/internal/keyfile"
)

// MasterKeyEnv is the environment variable that carries the master key as
// base64 (standard encoding, 32 bytes decoded).
const MasterKeyEnv = "CLOISTER_MASTER_KEY"

// MasterKeySize is the size of a master key in bytes (AES-256).
const MasterKeySize = 32

// MasterKey is the key-encryption key that wraps each secret's data key.
// It is never written to the database; only its ID is.
type MasterKey struct {
	id  string
	key []byte
}

// NewMasterKey returns the master key for 32 raw bytes.
func NewMasterKey(raw []byte) (*MasterKey, error) {
	if len(raw) != MasterKeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d (generate one with: head -c 32 /dev/urandom | base64)", len(raw), MasterKeySize)
	}
	// The ID is a hash of the key under a fixed label, so that a record can
	// name its key without revealing anything that helps recover it.
	sum := sha256.Sum256(append([]byte("cloister master key id\x00"), raw...))
	return &MasterKey{id: "mk-" + hex.EncodeToString(sum[:8]), key: append([]byte(nil), raw...)}, nil
}

// ParseMasterKey decodes a base64 master key, as stored in a key file or in
// CLOISTER_MASTER_KEY. Surrounding white space is ignored.
func ParseMasterKey(text string) (*MasterKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("master key is not valid base64 (%w); the key is the standard base64 encoding of %d random bytes, as written by: head -c %d /dev/urandom | base64", err, MasterKeySize, MasterKeySize)
	}
	return NewMasterKey(raw)
}

// ID returns the key's identifier, which is stored with every wrapped data
// key.
func (k *MasterKey) ID() string { return k.id }

// String returns the ID only, so that logging a key never prints it.
func (k *MasterKey) String() string { return "master key " + k.id }

// DefaultMasterKeyFile returns the per-user master key file,
// cloister/master.key under os.UserConfigDir: $XDG_CONFIG_HOME or
// ~/.config on Linux, ~/Library/Application Support on macOS. It lies
// outside the default data directory, unless XDG_CONFIG_HOME is
// XDG_DATA_HOME or lies inside the data directory, so that a copy of the
// data does not carry the key that decrypts it.
func DefaultMasterKeyFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("per-user configuration directory for the master key file not found (%w); pass --master-key-file PATH or set %s", err, MasterKeyEnv)
	}
	return filepath.Join(dir, "cloister", "master.key"), nil
}

// GenerateMasterKey returns a new random master key.
func GenerateMasterKey() (*MasterKey, error) {
	raw := make([]byte, MasterKeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	key, err := NewMasterKey(raw)
	clear(raw)
	return key, err
}

// WriteMasterKeyFile writes key as base64 to a new file at path with mode
// 0600, creating missing parent directories with mode 0700. It fails if
// the file exists, so that it never replaces a key that may have sealed
// secrets.
func WriteMasterKeyFile(path string, key *MasterKey) error {
	return keyfile.Create(path, []byte(base64.StdEncoding.EncodeToString(key.key)+"\n"))
}

// ReadMasterKeyFile reads the base64 master key in the file at path. It
// rejects a file that group or others can read or write. A missing file
// yields an error wrapping fs.ErrNotExist.
func ReadMasterKeyFile(path string) (*MasterKey, error) {
	text, err := ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParseMasterKey(text)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return key, nil
}

// LoadOrCreateKeyFile returns the text of a key file without surrounding
// white space, such as the admin API key. When the file does not exist, it
// generates 32 random bytes as unpadded base64url into a new file with mode
// 0600 and returns created true.
func LoadOrCreateKeyFile(path string) (text string, created bool, err error) {
	content, created, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		return []byte(base64.RawURLEncoding.EncodeToString(raw) + "\n"), nil
	})
	if err != nil {
		return "", false, err
	}
	text, err = keyText(path, content)
	return text, created, err
}

// ReadKeyFile returns the text of a key file without surrounding white
// space. It rejects an empty file and one that group or others can read or
// write; a missing file yields an error wrapping fs.ErrNotExist.
func ReadKeyFile(path string) (string, error) {
	content, err := keyfile.Read(path)
	if err != nil {
		return "", err
	}
	return keyText(path, content)
}

// keyText returns the content of the key file at path without surrounding
// white space, and rejects an empty file.
func keyText(path string, content []byte) (string, error) {
	text := strings.TrimSpace(string(content))
	if text == "" {
		return "", fmt.Errorf("key file %s is empty; write the key into it", path)
	}
	return text, nil
}
