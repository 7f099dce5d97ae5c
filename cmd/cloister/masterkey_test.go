package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/store"
)

// keyFixture is a data directory and a user configuration directory
// ($XDG_CONFIG_HOME) for one test, both empty at the start.
type keyFixture struct {
	dataDir     string
	configDir   string
	defaultPath string // master key file in configDir
	legacyPath  string // master key file in dataDir
}

// newKeyFixture points XDG_CONFIG_HOME, XDG_DATA_HOME and HOME at
// temporary directories, so that no test writes into the real user's home,
// and clears CLOISTER_MASTER_KEY.
func newKeyFixture(t *testing.T) keyFixture {
	t.Helper()
	root := t.TempDir()
	fx := keyFixture{dataDir: filepath.Join(root, "data"), configDir: filepath.Join(root, "config")}
	for _, dir := range []string{fx.dataDir, fx.configDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XDG_CONFIG_HOME", fx.configDir)
	t.Setenv("XDG_DATA_HOME", filepath.Join(root, "share"))
	t.Setenv("HOME", filepath.Join(root, "home"))
	t.Setenv(store.MasterKeyEnv, "")
	var err error
	if fx.defaultPath, err = store.DefaultMasterKeyFile(); err != nil {
		t.Fatal(err)
	}
	fx.legacyPath = filepath.Join(fx.dataDir, legacyMasterKeyFile)
	return fx
}

// testKey is a master key and its base64 text, as in a key file or in
// CLOISTER_MASTER_KEY.
type testKey struct {
	key  *store.MasterKey
	text string
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	raw := make([]byte, store.MasterKeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	key, err := store.NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{key: key, text: base64.StdEncoding.EncodeToString(raw)}
}

// writeTestKey writes a new master key to path with mode 0600.
func writeTestKey(t *testing.T, path string) testKey {
	t.Helper()
	k := newTestKey(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(k.text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// keyWant is the expected result of loadServeMasterKey. An empty keyID
// skips the ID check, and a non-empty errParts expects an error that
// contains each part.
type keyWant struct {
	keyID     string
	path      string
	generated bool
	warning   string
	errParts  []string
}

func TestLoadServeMasterKey(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant)
	}{
		{
			name: "no key generates per-user file",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				return masterKeyConfig{dataDir: fx.dataDir, sqlite: true}, keyWant{path: fx.defaultPath, generated: true}
			},
		},
		{
			name: "per-user file reused",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				k := writeTestKey(t, fx.defaultPath)
				return masterKeyConfig{dataDir: fx.dataDir, sqlite: true}, keyWant{keyID: k.key.ID(), path: fx.defaultPath}
			},
		},
		{
			name: "no key with PostgreSQL",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				return masterKeyConfig{dataDir: fx.dataDir},
					keyWant{errParts: []string{"--database-url", "every replica", "If other replicas already use the database, copy their key file there", "head -c 32 /dev/urandom", fx.defaultPath, "--master-key-file", store.MasterKeyEnv}}
			},
		},
		{
			name: "per-user file reused with PostgreSQL",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				k := writeTestKey(t, fx.defaultPath)
				return masterKeyConfig{dataDir: fx.dataDir}, keyWant{keyID: k.key.ID(), path: fx.defaultPath}
			},
		},
		{
			name: "legacy file used with warning",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				k := writeTestKey(t, fx.legacyPath)
				return masterKeyConfig{dataDir: fx.dataDir, sqlite: true},
					keyWant{keyID: k.key.ID(), path: fx.legacyPath, warning: fx.legacyPath}
			},
		},
		{
			name: "legacy file before per-user file",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				writeTestKey(t, fx.defaultPath)
				k := writeTestKey(t, fx.legacyPath)
				return masterKeyConfig{dataDir: fx.dataDir, sqlite: true},
					keyWant{keyID: k.key.ID(), path: fx.legacyPath, warning: fx.legacyPath}
			},
		},
		{
			name: "flag file used",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				path := filepath.Join(fx.configDir, "elsewhere", "service.key")
				k := writeTestKey(t, path)
				writeTestKey(t, fx.defaultPath)
				return masterKeyConfig{flagPath: path, dataDir: fx.dataDir, sqlite: true}, keyWant{keyID: k.key.ID(), path: path}
			},
		},
		{
			name: "flag file with legacy file warns",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				path := filepath.Join(fx.configDir, "service.key")
				k := writeTestKey(t, path)
				writeTestKey(t, fx.legacyPath)
				return masterKeyConfig{flagPath: path, dataDir: fx.dataDir, sqlite: true},
					keyWant{keyID: k.key.ID(), path: path, warning: fx.legacyPath}
			},
		},
		{
			name: "flag inside SQLite data directory",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				path := filepath.Join(fx.dataDir, "keys", "master.key")
				writeTestKey(t, path)
				return masterKeyConfig{flagPath: path, dataDir: fx.dataDir, sqlite: true},
					keyWant{errParts: []string{"--master-key-file " + path, fx.dataDir, store.MasterKeyEnv}}
			},
		},
		{
			name: "flag through symlink into data directory",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				writeTestKey(t, filepath.Join(fx.dataDir, "keys", "master.key"))
				link := filepath.Join(fx.configDir, "keys")
				if err := os.Symlink(filepath.Join(fx.dataDir, "keys"), link); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(link, "master.key")
				return masterKeyConfig{flagPath: path, dataDir: fx.dataDir, sqlite: true},
					keyWant{errParts: []string{"--master-key-file " + path, fx.dataDir}}
			},
		},
		{
			name: "flag inside data directory with PostgreSQL",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				path := filepath.Join(fx.dataDir, "service.key")
				k := writeTestKey(t, path)
				return masterKeyConfig{flagPath: path, dataDir: fx.dataDir}, keyWant{keyID: k.key.ID(), path: path}
			},
		},
		{
			name: "flag file missing",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				path := filepath.Join(fx.configDir, "missing.key")
				return masterKeyConfig{flagPath: path, dataDir: fx.dataDir, sqlite: true},
					keyWant{errParts: []string{"--master-key-file " + path, "not found", "head -c 32 /dev/urandom"}}
			},
		},
		{
			name: "flag file readable by others",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				path := filepath.Join(fx.configDir, "open.key")
				writeTestKey(t, path)
				if err := os.Chmod(path, 0o644); err != nil {
					t.Fatal(err)
				}
				return masterKeyConfig{flagPath: path, dataDir: fx.dataDir, sqlite: true},
					keyWant{errParts: []string{path, "chmod 600"}}
			},
		},
		{
			name: "flag and environment variable",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				path := filepath.Join(fx.configDir, "service.key")
				writeTestKey(t, path)
				return masterKeyConfig{flagPath: path, envValue: newTestKey(t).text, dataDir: fx.dataDir, sqlite: true},
					keyWant{errParts: []string{"--master-key-file " + path, store.MasterKeyEnv, "only one"}}
			},
		},
		{
			name: "environment variable used",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				k := newTestKey(t)
				writeTestKey(t, fx.defaultPath)
				return masterKeyConfig{envValue: k.text, dataDir: fx.dataDir, sqlite: true}, keyWant{keyID: k.key.ID()}
			},
		},
		{
			name: "environment variable with legacy file warns",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				k := newTestKey(t)
				writeTestKey(t, fx.legacyPath)
				return masterKeyConfig{envValue: k.text, dataDir: fx.dataDir, sqlite: true},
					keyWant{keyID: k.key.ID(), warning: fx.legacyPath}
			},
		},
		{
			name: "default file inside data directory",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				// This is the case of --data-dir ~/.config, where the
				// default key file lies below the data directory.
				return masterKeyConfig{dataDir: fx.configDir, sqlite: true},
					keyWant{errParts: []string{"default master key file " + fx.defaultPath, "--master-key-file"}}
			},
		},
		{
			name: "no configuration directory",
			setup: func(t *testing.T, fx keyFixture) (masterKeyConfig, keyWant) {
				t.Setenv("XDG_CONFIG_HOME", "")
				t.Setenv("HOME", "")
				return masterKeyConfig{dataDir: fx.dataDir, sqlite: true},
					keyWant{errParts: []string{"--master-key-file", store.MasterKeyEnv}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newKeyFixture(t)
			cfg, want := tt.setup(t, fx)
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))

			got, err := loadServeMasterKey(cfg, logger)
			if len(want.errParts) > 0 {
				if err == nil {
					t.Fatalf("loadServeMasterKey succeeded with key from %q, want an error", got.path)
				}
				if code := exitCode(t, err); code != exitUsage {
					t.Errorf("exit code %d, want %d", code, exitUsage)
				}
				for _, part := range want.errParts {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q does not contain %q", err, part)
					}
				}
				if cfg.envValue != "" && strings.Contains(err.Error(), cfg.envValue) {
					t.Errorf("error %q contains the key from %s", err, store.MasterKeyEnv)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadServeMasterKey: %v", err)
			}
			if want.keyID != "" && got.key.ID() != want.keyID {
				t.Errorf("key ID = %s, want %s", got.key.ID(), want.keyID)
			}
			if got.path != want.path {
				t.Errorf("key path = %q, want %q", got.path, want.path)
			}
			if got.generated != want.generated {
				t.Errorf("generated = %v, want %v", got.generated, want.generated)
			}
			if want.warning == "" && strings.Contains(logs.String(), `"level":"WARN"`) {
				t.Errorf("unexpected warning: %s", logs.String())
			}
			if want.warning != "" && !strings.Contains(logs.String(), want.warning) {
				t.Errorf("log does not warn about %s: %s", want.warning, logs.String())
			}
			if want.warning != "" && !strings.Contains(logs.String(), "move it out of the data directory") {
				t.Errorf("warning does not name the fix: %s", logs.String())
			}
			if _, err := os.Stat(fx.legacyPath); err == nil && want.path != fx.legacyPath && want.warning == "" {
				t.Errorf("a key file appeared in the data directory: %s", fx.legacyPath)
			}
		})
	}
}

// startWithKey runs the master key steps of cloister serve on a SQLite
// store in fx.dataDir and returns the open store and the key.
func startWithKey(t *testing.T, fx keyFixture, logger *slog.Logger) (store.Store, *serveMasterKey, error) {
	t.Helper()
	mk, err := loadServeMasterKey(masterKeyConfig{dataDir: fx.dataDir, sqlite: true}, logger)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(context.Background(), store.Config{DataDir: fx.dataDir, MasterKey: mk.key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	if err := mk.checkStore(context.Background(), st, logger); err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, mk, nil
}

func TestServeMasterKeyRestart(t *testing.T) {
	fx := newKeyFixture(t)
	ctx := context.Background()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))

	st, first, err := startWithKey(t, fx, logger)
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	if _, err := st.PutSecret(ctx, "default/key/model", []byte("model key")); err != nil {
		t.Fatal(err)
	}
	st.Close()

	info, err := os.Stat(fx.defaultPath)
	if err != nil {
		t.Fatalf("first start wrote no per-user key file: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %#o, want 0600", perm)
	}
	dirInfo, err := os.Stat(filepath.Dir(fx.defaultPath))
	if err != nil {
		t.Fatal(err)
	}
	if perm := dirInfo.Mode().Perm(); perm != 0o700 {
		t.Errorf("key directory mode = %#o, want 0700", perm)
	}
	if _, err := os.Stat(fx.legacyPath); err == nil {
		t.Errorf("first start wrote a key file into the data directory: %s", fx.legacyPath)
	}
	if _, err := os.Stat(filepath.Join(fx.dataDir, store.SQLiteFile)); err != nil {
		t.Errorf("the database is not in the data directory: %v", err)
	}
	content, err := os.ReadFile(fx.defaultPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), strings.TrimSpace(string(content))) {
		t.Error("the log contains the key")
	}
	if !strings.Contains(logs.String(), first.key.ID()) || !strings.Contains(logs.String(), fx.defaultPath) {
		t.Errorf("log does not name the key ID %s and the path %s: %s", first.key.ID(), fx.defaultPath, logs.String())
	}

	st, second, err := startWithKey(t, fx, logger)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer st.Close()
	if second.generated || second.key.ID() != first.key.ID() {
		t.Errorf("restart: generated %v, key ID %s; want false, %s", second.generated, second.key.ID(), first.key.ID())
	}
	secret, err := st.GetSecret(ctx, "default/key/model")
	if err != nil {
		t.Fatalf("restart cannot decrypt the secret: %v", err)
	}
	if string(secret.Value) != "model key" {
		t.Errorf("secret = %q, want %q", secret.Value, "model key")
	}
}

func TestServeMasterKeyNotGeneratedOverSecrets(t *testing.T) {
	fx := newKeyFixture(t)
	ctx := context.Background()
	old := newTestKey(t)
	st, err := store.Open(ctx, store.Config{DataDir: fx.dataDir, MasterKey: old.key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutSecret(ctx, "default/key/model", []byte("model key")); err != nil {
		t.Fatal(err)
	}
	st.Close()

	_, _, err = startWithKey(t, fx, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("start generated a new master key over a store with secrets, want an error")
	}
	for _, part := range []string{old.key.ID(), "--master-key-file", store.MasterKeyEnv} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
	if _, err := os.Stat(fx.defaultPath); err == nil {
		t.Errorf("the failed start left a key file at %s, which the next start would use", fx.defaultPath)
	}
}

// A start with a key other than the one that sealed the stored secrets
// logs a warning that names both keys and the fix.
func TestServeWarnsOfForeignSecrets(t *testing.T) {
	tests := []struct {
		name     string
		sameKey  bool
		wantWarn bool
	}{
		{"key that sealed the secrets", true, false},
		{"another key", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newKeyFixture(t)
			ctx := context.Background()
			sealing := newTestKey(t)
			st, err := store.Open(ctx, store.Config{DataDir: fx.dataDir, MasterKey: sealing.key, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.PutSecret(ctx, "default/key/model", []byte("model key")); err != nil {
				t.Fatal(err)
			}

			running := sealing
			if !tt.sameKey {
				// Serve opens the store with its own key.
				running = newTestKey(t)
				st.Close()
				st, err = store.Open(ctx, store.Config{DataDir: fx.dataDir, MasterKey: running.key, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
			}
			var logs bytes.Buffer
			mk := &serveMasterKey{key: running.key}
			if err := mk.checkStore(ctx, st, slog.New(slog.NewJSONHandler(&logs, nil))); err != nil {
				t.Fatal(err)
			}
			warned := strings.Contains(logs.String(), "secrets sealed under another master key")
			if warned != tt.wantWarn {
				t.Fatalf("warning logged = %v, want %v; log:\n%s", warned, tt.wantWarn, logs.String())
			}
			if !tt.wantWarn {
				return
			}
			for _, part := range []string{sealing.key.ID(), running.key.ID(), "cloister secret rewrap"} {
				if !strings.Contains(logs.String(), part) {
					t.Errorf("warning does not contain %q:\n%s", part, logs.String())
				}
			}
		})
	}
}

func TestIsInside(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		path string
		want bool
	}{
		{path: dir, want: true},
		{path: filepath.Join(dir, "master.key"), want: true},
		{path: filepath.Join(dir, "a", "b", "master.key"), want: true},
		{path: filepath.Join(dir, "..", filepath.Base(dir), "master.key"), want: true},
		{path: filepath.Dir(dir), want: false},
		{path: dir + "-other/master.key", want: false},
		{path: filepath.Join(dir, "..", "..master.key"), want: false},
	}
	for _, tt := range tests {
		got, err := isInside(dir, tt.path)
		if err != nil {
			t.Errorf("isInside(%q): %v", tt.path, err)
			continue
		}
		if got != tt.want {
			t.Errorf("isInside(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// When another process writes the key file between the load and the
// write, the start fails and keeps that file. The error names the fix:
// start cloister serve again.
func TestServeMasterKeyWrittenMeanwhile(t *testing.T) {
	fx := newKeyFixture(t)
	mk, err := loadServeMasterKey(masterKeyConfig{dataDir: fx.dataDir, sqlite: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	other := writeTestKey(t, fx.defaultPath)
	st, err := store.Open(context.Background(), store.Config{DataDir: fx.dataDir, MasterKey: mk.key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	err = mk.checkStore(context.Background(), st, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "start cloister serve again") {
		t.Fatalf("checkStore = %v, want an error containing %q", err, "start cloister serve again")
	}
	onDisk, err := store.ReadMasterKeyFile(fx.defaultPath)
	if err != nil {
		t.Fatal(err)
	}
	if onDisk.ID() != other.key.ID() {
		t.Errorf("key file contains %s, want the other process's %s", onDisk.ID(), other.key.ID())
	}
}
