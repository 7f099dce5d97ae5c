package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/store"
)

// A duration flag out of its range fails the start with a usage error that
// names the flag.
func TestServeRejectsDurationsOutOfRange(t *testing.T) {
	tests := []struct {
		flag   string
		values []string
	}{
		{"--commit-delay", []string{"-1ms", "101ms", "1h"}},
		{"--request-timeout", []string{"0s", "-1s"}},
		{"--audit-checkpoint-interval", []string{"-1s", "-5m"}},
	}
	for _, tt := range tests {
		for _, value := range tt.values {
			_, err := runCloister(t, "serve", "--data-dir", t.TempDir(), tt.flag, value)
			if exitCode(t, err) != exitUsage {
				t.Errorf("%s %s: %v, want a usage error", tt.flag, value, err)
				continue
			}
			if !strings.Contains(err.Error(), tt.flag) {
				t.Errorf("%s %s: error %q does not name the flag", tt.flag, value, err)
			}
		}
	}
}

// An address in use fails the start with a usage error that names
// --listen.
func TestServeListenAddressInUse(t *testing.T) {
	fx := newKeyFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	_, err = runCloister(t, "serve", "--data-dir", fx.dataDir, "--listen", ln.Addr().String(), "--log-level", "error")
	if exitCode(t, err) != exitUsage {
		t.Fatalf("serve on a used address: %v, want a usage error", err)
	}
	if !strings.Contains(err.Error(), "--listen") {
		t.Errorf("error %q does not name --listen", err)
	}
}

// A failed start of cloister serve leaves no EAR signing key
// or admin key in the data directory. Otherwise a replica whose first start
// failed would keep keys of its own, which differ from those copied from
// the other replicas.
func TestServeFailedStartCreatesNoKeys(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, fx keyFixture) []string
	}{
		{"database unreachable", func(t *testing.T, fx keyFixture) []string {
			keyPath := filepath.Join(fx.configDir, "master.key")
			writeTestKey(t, keyPath)
			url := "postgres://cloister@" + freeAddr(t) + "/cloister?sslmode=disable&connect_timeout=5"
			return []string{"--database-url", url, "--master-key-file", keyPath}
		}},
		{"address in use", func(t *testing.T, fx keyFixture) []string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			return []string{"--listen", ln.Addr().String()}
		}},
		{"secrets sealed under another master key", func(t *testing.T, fx keyFixture) []string {
			st, err := store.Open(context.Background(), store.Config{DataDir: fx.dataDir, MasterKey: newTestKey(t).key, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.PutSecret(context.Background(), "default/key/model", []byte("model key")); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newKeyFixture(t)
			args := append([]string{"serve", "--data-dir", fx.dataDir, "--listen", "127.0.0.1:0", "--log-level", "error"}, tt.setup(t, fx)...)

			if _, err := runCloister(t, args...); err == nil {
				t.Fatal("serve started, want a failed start")
			}
			for _, path := range []string{filepath.Join(fx.dataDir, ear.KeyFile), admin.DefaultKeyPath(fx.dataDir)} {
				if _, err := os.Stat(path); err == nil {
					t.Errorf("the failed start created %s", path)
				}
			}
		})
	}
}

func TestServerCommitDelay(t *testing.T) {
	if got := serverCommitDelay(0); got >= 0 {
		t.Errorf("serverCommitDelay(0) = %v, want a negative value, which turns the delay off", got)
	}
	if got := serverCommitDelay(2 * time.Millisecond); got != 2*time.Millisecond {
		t.Errorf("serverCommitDelay(2ms) = %v, want 2ms", got)
	}
}

func TestServerCheckpointInterval(t *testing.T) {
	if got := serverCheckpointInterval(0); got >= 0 {
		t.Errorf("serverCheckpointInterval(0) = %v, want a negative value, which turns the checkpoint lines off", got)
	}
	if got := serverCheckpointInterval(time.Minute); got != time.Minute {
		t.Errorf("serverCheckpointInterval(1m) = %v, want 1m", got)
	}
}

func TestServeRejectsMasterKeyFlags(t *testing.T) {
	tests := []struct {
		name     string
		keyInDir bool
		env      bool
		want     []string
	}{
		{name: "flag and environment variable", env: true, want: []string{"--master-key-file", store.MasterKeyEnv, "only one"}},
		{name: "flag inside data directory", keyInDir: true, want: []string{"--master-key-file", "data directory", "move the key out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newKeyFixture(t)
			path := filepath.Join(fx.configDir, "service.key")
			if tt.keyInDir {
				path = filepath.Join(fx.dataDir, "service.key")
			}
			writeTestKey(t, path)
			if tt.env {
				t.Setenv(store.MasterKeyEnv, newTestKey(t).text)
			}

			_, err := runCloister(t, "serve", "--data-dir", fx.dataDir, "--master-key-file", path, "--listen", "127.0.0.1:0")
			if code := exitCode(t, err); code != exitUsage {
				t.Fatalf("exit code %d (%v), want %d", code, err, exitUsage)
			}
			for _, part := range tt.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
			if _, err := os.Stat(filepath.Join(fx.dataDir, store.SQLiteFile)); err == nil {
				t.Error("serve created the database although it rejected the master key")
			}
		})
	}
}

// TestServeWithoutFlags starts cloister serve twice with only a data
// directory and checks that the generated master key lies in the user
// configuration directory and survives the restart.
func TestServeWithoutFlags(t *testing.T) {
	fx := newKeyFixture(t)

	runServeUntilHealthy(t, fx.dataDir)
	first, err := os.ReadFile(fx.defaultPath)
	if err != nil {
		t.Fatalf("no master key in the user configuration directory: %v", err)
	}
	if _, err := os.Stat(fx.legacyPath); err == nil {
		t.Errorf("serve wrote a master key into the data directory: %s", fx.legacyPath)
	}

	runServeUntilHealthy(t, fx.dataDir)
	second, err := os.ReadFile(fx.defaultPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("the restart replaced the master key")
	}
}

// startKeyBroker runs cloister serve with args on a free loopback port
// until /healthz returns 200, and returns the command and the service URL.
func startKeyBroker(t *testing.T, args ...string) (*runningCommand, string) {
	t.Helper()
	addr := freeAddr(t)
	url := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	healthy := func(*runningCommand) bool {
		resp, err := client.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	args = append([]string{"serve", "--listen", addr, "--log-level", "error"}, args...)
	return startCommand(t, healthy, args...), url
}

// runServeUntilHealthy runs cloister serve until /healthz returns 200,
// then stops it and checks that it exited cleanly.
func runServeUntilHealthy(t *testing.T, dataDir string) {
	t.Helper()
	serve, _ := startKeyBroker(t, "--data-dir", dataDir)
	if err := serve.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// A data directory with an EAR signing key but no SQLite database is the
// mark of a replica started without its --database-url.
func TestWarnNewSQLiteBesideKeys(t *testing.T) {
	cases := []struct {
		name     string
		files    []string
		wantWarn bool
	}{
		{"empty data directory", nil, false},
		{"signing key without database", []string{ear.KeyFile}, true},
		{"signing key and database", []string{ear.KeyFile, store.SQLiteFile}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			warnNewSQLiteBesideKeys(slog.New(slog.NewJSONHandler(&logs, nil)), dir)
			warned := strings.Contains(logs.String(), "--database-url")
			if warned != tc.wantWarn {
				t.Errorf("warned = %v, want %v; log: %s", warned, tc.wantWarn, logs.String())
			}
		})
	}
}

// The help text of cloister serve does not print the database URL from
// the environment, which may contain a password, and serve still connects to
// that URL when --database-url is not given.
func TestServeDatabaseURLFromEnvironment(t *testing.T) {
	addr := freeAddr(t)
	t.Setenv(databaseURLEnv, "postgres://cloister:password-in-env@"+addr+"/cloister?sslmode=disable&connect_timeout=5")

	help, err := runCloister(t, "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(help, "password-in-env") {
		t.Errorf("serve --help prints the database URL from %s:\n%s", databaseURLEnv, help)
	}

	fx := newKeyFixture(t)
	keyPath := filepath.Join(fx.configDir, "master.key")
	writeTestKey(t, keyPath)
	_, err = runCloister(t, "serve", "--data-dir", fx.dataDir, "--listen", "127.0.0.1:0", "--log-level", "error", "--master-key-file", keyPath)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("serve error %v, expected a failed connection to %s from %s", err, addr, databaseURLEnv)
	}

	// An explicit empty --database-url chooses SQLite. The address in use
	// stops serve after the store opened.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = runCloister(t, "serve", "--data-dir", fx.dataDir, "--database-url", "", "--listen", ln.Addr().String(),
		"--log-level", "error", "--master-key-file", keyPath)
	if err == nil || strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "--listen") {
		t.Errorf("serve with --database-url \"\": error %v, expected SQLite and then the address in use", err)
	}
}
