package admin

import (
	"fmt"
	"path/filepath"

	"github.com/cloister-dev/cloister/store"
)

// KeyEnv is the environment variable that carries the admin API key.
const KeyEnv = "CLOISTER_ADMIN_KEY"

// KeyFile is the name of the admin key file in the data directory.
const KeyFile = "admin.key"

// MinKeySize is the minimum length of the admin key in bytes, because a
// bearer key is the whole of the API's protection.
const MinKeySize = 16

// DefaultKeyPath returns dataDir/admin.key.
func DefaultKeyPath(dataDir string) string { return filepath.Join(dataDir, KeyFile) }

// LoadOrCreateKey returns envValue (the content of CLOISTER_ADMIN_KEY) when
// it is not empty, or else the key in the file at path. When that file does
// not exist, it generates a random key into a new 0600 file and returns
// created true, so that the service can log where the key is. Keys shorter
// than MinKeySize are rejected.
func LoadOrCreateKey(path, envValue string) (key string, created bool, err error) {
	source := path
	if envValue != "" {
		key, source = envValue, KeyEnv
	} else {
		key, created, err = store.LoadOrCreateKeyFile(path)
		if err != nil {
			return "", false, fmt.Errorf("admin key: %w", err)
		}
	}
	if len(key) < MinKeySize {
		return "", false, fmt.Errorf("admin key in %s is %d bytes, expected at least %d; generate one with: head -c 32 /dev/urandom | base64", source, len(key), MinKeySize)
	}
	return key, created, nil
}

// ReadKeyFile reads the admin key from a file, for clients. It rejects a
// file that group or others can read, like the service does.
func ReadKeyFile(path string) (string, error) {
	key, err := store.ReadKeyFile(path)
	if err != nil {
		return "", fmt.Errorf("admin key: %w", err)
	}
	return key, nil
}
