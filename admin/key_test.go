package admin

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := DefaultKeyPath(t.TempDir())
	key, created, err := LoadOrCreateKey(path, "")
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKey = created %v, %v; want a new key", created, err)
	}
	again, created, err := LoadOrCreateKey(path, "")
	if err != nil || created || again != key {
		t.Errorf("second LoadOrCreateKey returned another key or created one (created %v, err %v)", created, err)
	}
	read, err := ReadKeyFile(path)
	if err != nil || read != key {
		t.Errorf("ReadKeyFile = %v; want the generated key", err)
	}
	if _, _, err := LoadOrCreateKey(path, "short"); err == nil {
		t.Error("LoadOrCreateKey accepted a 5-byte key from the environment")
	} else if !strings.Contains(err.Error(), KeyEnv) {
		t.Errorf("error %q does not name %s, where the short key came from", err, KeyEnv)
	}
	if _, err := ReadKeyFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("ReadKeyFile of a missing file succeeded")
	}
}

// NewHandler rejects a bearer key that LoadOrCreateKey would reject, so
// that a caller that sets Config.APIKey itself gets the same minimum.
func TestNewHandlerRejectsShortKey(t *testing.T) {
	for _, key := range []string{"k", strings.Repeat("k", MinKeySize-1)} {
		_, err := NewHandler(Config{Store: newTestStore(t), APIKey: key})
		if err == nil {
			t.Errorf("NewHandler accepted a %d-byte API key", len(key))
			continue
		}
		if !strings.Contains(err.Error(), "at least 16") {
			t.Errorf("error %q does not name the minimum", err)
		}
	}
	if _, err := NewHandler(Config{Store: newTestStore(t), APIKey: strings.Repeat("k", MinKeySize)}); err != nil {
		t.Errorf("NewHandler rejected a %d-byte API key: %v", MinKeySize, err)
	}
}
