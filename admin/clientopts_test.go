package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClientOptionsKeySources(t *testing.T) {
	dataHome := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dataHome)
	t.Setenv(KeyEnv, "")
	t.Setenv(ServerEnv, "")

	if _, err := (ClientOptions{}).NewClient(); err == nil || !strings.Contains(err.Error(), "no admin key") {
		t.Errorf("NewClient without any key: err = %v, want a missing-key error", err)
	}

	defaultKey, _, err := LoadOrCreateKey(DefaultKeyPath(filepath.Join(dataHome, "cloister")), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ClientOptions{}.NewClient()
	if err != nil {
		t.Fatalf("NewClient with the default key file: %v", err)
	}
	if c.APIKey != defaultKey || c.BaseURL != DefaultServer {
		t.Errorf("client uses key %q at %s, want the default key file's key at %s", c.APIKey, c.BaseURL, DefaultServer)
	}

	t.Setenv(KeyEnv, "environment-key-0123456789")
	if c, err = (ClientOptions{}).NewClient(); err != nil || c.APIKey != "environment-key-0123456789" {
		t.Errorf("NewClient with %s set: key %q, err %v", KeyEnv, c.APIKey, err)
	}

	explicit := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(explicit, []byte("explicit-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = (ClientOptions{KeyFile: explicit}).NewClient(); err != nil || c.APIKey != "explicit-key-0123456789" {
		t.Errorf("NewClient with KeyFile: key %q, err %v", c.APIKey, err)
	}

	missing := filepath.Join(t.TempDir(), "admin.key")
	_, err = ClientOptions{KeyFile: missing}.NewClient()
	if err == nil || !strings.Contains(err.Error(), "admin key file "+missing+" not found") || !strings.Contains(err.Error(), "state/admin.key") {
		t.Errorf("NewClient with a missing KeyFile: err %v, want one that names the file and the fix", err)
	}
}

func TestClientOptionsServerSources(t *testing.T) {
	t.Setenv(KeyEnv, "environment-key-0123456789")
	tests := []struct {
		name, env, flag, want string
	}{
		{name: "default", want: DefaultServer},
		{name: "environment", env: "http://127.0.0.1:18081", want: "http://127.0.0.1:18081"},
		{name: "flag over environment", env: "http://127.0.0.1:18081", flag: "http://127.0.0.1:18082", want: "http://127.0.0.1:18082"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(ServerEnv, tt.env)
			c, err := ClientOptions{Server: tt.flag}.NewClient()
			if err != nil {
				t.Fatal(err)
			}
			if c.BaseURL != tt.want {
				t.Errorf("server %s, expected %s", c.BaseURL, tt.want)
			}
		})
	}

	t.Setenv(ServerEnv, "127.0.0.1:8080")
	if _, err := (ClientOptions{}).NewClient(); err == nil || !strings.Contains(err.Error(), "$"+ServerEnv) {
		t.Errorf("invalid URL in %s: error %v, expected one that names the variable", ServerEnv, err)
	}
}

func TestClientOptionsRejects(t *testing.T) {
	t.Setenv(KeyEnv, "environment-key-0123456789")
	tests := []struct {
		name string
		opts ClientOptions
	}{
		{name: "plain HTTP to remote host", opts: ClientOptions{Server: "http://admin.example:8080"}},
		{name: "unsupported scheme", opts: ClientOptions{Server: "ftp://127.0.0.1"}},
		{name: "no host", opts: ClientOptions{Server: "http://"}},
		{name: "certificate without key", opts: ClientOptions{CertFile: "client.pem"}},
		{name: "missing CA file", opts: ClientOptions{CAFile: filepath.Join(t.TempDir(), "missing.pem")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.opts.NewClient(); err == nil {
				t.Error("NewClient succeeded, want an error")
			}
		})
	}

	for _, server := range []string{"http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost:8080", "https://admin.example"} {
		if _, err := (ClientOptions{Server: server}).NewClient(); err != nil {
			t.Errorf("NewClient(%s): %v", server, err)
		}
	}
}
