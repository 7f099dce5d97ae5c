package store

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestMasterKeyRejectsInvalidInput(t *testing.T) {
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
			if tt.env != "" {
				if _, err := ParseMasterKey(tt.env); err == nil {
					t.Error("ParseMasterKey succeeded, want an error")
				}
				return
			}
			if _, err := ReadMasterKeyFile(path); err == nil {
				t.Error("ReadMasterKeyFile succeeded, want an error")
			}
		})
	}
}

// A key that is not base64, such as the raw bytes of a key file, gets an
// error that names the expected format.
func TestParseMasterKeyNamesFormat(t *testing.T) {
	_, err := ParseMasterKey(string(make([]byte, MasterKeySize)) + "\xff")
	if err == nil {
		t.Fatal("ParseMasterKey accepted raw bytes")
	}
	if !strings.Contains(err.Error(), "head -c 32 /dev/urandom | base64") {
		t.Errorf("error %q does not show how to write a key in the expected format", err)
	}
}

func TestDefaultMasterKeyFile(t *testing.T) {
	configDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", configDir)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_DATA_HOME", "")
	path, err := DefaultMasterKeyFile()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(configDir, "cloister", "master.key"); runtime.GOOS == "linux" && path != want {
		t.Errorf("DefaultMasterKeyFile() = %s, want %s", path, want)
	}
	dataDir, err := DefaultDataDir()
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(path, dataDir+string(filepath.Separator)) {
		t.Errorf("DefaultMasterKeyFile() = %s lies in the default data directory %s", path, dataDir)
	}

	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	_, err = DefaultMasterKeyFile()
	if err == nil {
		t.Fatal("DefaultMasterKeyFile succeeded without XDG_CONFIG_HOME and HOME, want an error")
	}
	for _, part := range []string{"--master-key-file", MasterKeyEnv} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not name the fix %q", err, part)
		}
	}
}

func TestWriteMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config", "cloister", "master.key")
	key, err := GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteMasterKeyFile(path, key); err != nil {
		t.Fatalf("write: %v", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %#o, want 0600", perm)
	}
	dirInfo, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := dirInfo.Mode().Perm(); perm != 0o700 {
		t.Errorf("key directory mode = %#o, want 0700", perm)
	}

	loaded, err := ReadMasterKeyFile(path)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if loaded.ID() != key.ID() {
		t.Errorf("read key ID = %s, want %s", loaded.ID(), key.ID())
	}
	if strings.Contains(loaded.String(), base64.StdEncoding.EncodeToString(loaded.key)) {
		t.Error("String() prints the key")
	}

	other := testMasterKey(t)
	if err := WriteMasterKeyFile(path, other); err == nil {
		t.Error("second write over an existing key file succeeded, want an error")
	}
	again, err := ReadMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != key.ID() {
		t.Errorf("key ID after the failed write = %s, want %s", again.ID(), key.ID())
	}
}

func TestReadMasterKeyFileMissing(t *testing.T) {
	_, err := ReadMasterKeyFile(filepath.Join(t.TempDir(), "missing.key"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v, want one wrapping fs.ErrNotExist", err)
	}
}

// Services that start at once with no admin key file all read the one key
// that lands in the file.
func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.key")
	const services = 8
	texts := make([]string, services)
	created := make([]bool, services)
	errs := make([]error, services)
	var wg sync.WaitGroup
	for i := range services {
		wg.Go(func() { texts[i], created[i], errs[i] = LoadOrCreateKeyFile(path) })
	}
	wg.Wait()

	creators := 0
	for i := range services {
		if errs[i] != nil {
			t.Fatalf("service %d: %v", i, errs[i])
		}
		if texts[i] != texts[0] {
			t.Errorf("service %d read key %q, service 0 read %q", i, texts[i], texts[0])
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d services report that they created the key file, want 1", creators)
	}
}
