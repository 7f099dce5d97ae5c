package store

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master.key")

	created, isNew, err := LoadOrCreateMasterKey(path, "")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !isNew {
		t.Error("first call: created = false, want true")
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %#o, want 0600", perm)
	}

	loaded, isNew, err := LoadOrCreateMasterKey(path, "")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if isNew || loaded.ID() != created.ID() {
		t.Errorf("second call: created = %v, ID %s; want false, %s", isNew, loaded.ID(), created.ID())
	}
	if strings.Contains(loaded.String(), base64.StdEncoding.EncodeToString(loaded.key)) {
		t.Error("String() prints the key")
	}

	other := testMasterKey(t)
	fromEnv, _, err := LoadOrCreateMasterKey(path, base64.StdEncoding.EncodeToString(other.key))
	if err != nil {
		t.Fatalf("from environment: %v", err)
	}
	if fromEnv.ID() != other.ID() {
		t.Errorf("environment key ID = %s, want %s", fromEnv.ID(), other.ID())
	}
}

func TestLoadMasterKeyRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		env     string
	}{
		{name: "group readable", content: base64.StdEncoding.EncodeToString(make([]byte, 32)), mode: 0o640},
		{name: "short key", content: base64.StdEncoding.EncodeToString(make([]byte, 16)), mode: 0o600},
		{name: "not base64", content: "not base64!", mode: 0o600},
		{name: "short environment key", env: base64.StdEncoding.EncodeToString(make([]byte, 31))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(path, tt.mode)
			}
			if _, _, err := LoadOrCreateMasterKey(path, tt.env); err == nil {
				t.Error("LoadOrCreateMasterKey succeeded, want an error")
			}
		})
	}
}
