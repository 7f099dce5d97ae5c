//go:build unix

package collateral

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDiskBackendRejectsSharedDir(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		err   string
	}{
		{"private", func(t *testing.T, dir string) {}, ""},
		{"group writable", func(t *testing.T, dir string) { chmod(t, dir, 0o770) }, "chmod go-w"},
		{"world writable", func(t *testing.T, dir string) { chmod(t, dir, 0o777) }, "chmod go-w"},
		{"other owner", func(t *testing.T, dir string) {
			if os.Getuid() != 0 {
				t.Skip("changing a directory's owner needs root")
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "not by the current user"},
		{"file", func(t *testing.T, dir string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			d := DiskBackend{Dir: dir}
			ctx := context.Background()

			putErr := d.Put(ctx, &Entry{Key: "k", Body: []byte("x"), FetchedAt: time.Now()})
			_, getErr := d.Get(ctx, "k")
			_, listErr := d.List(ctx)
			for op, err := range map[string]error{"Put": putErr, "Get": getErr, "List": listErr} {
				if tt.err == "" {
					if err != nil {
						t.Errorf("%s in a private directory: %v", op, err)
					}
					continue
				}
				if err == nil {
					t.Errorf("%s accepted the directory", op)
					continue
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("%s error %q does not contain %q", op, err, tt.err)
				}
			}
		})
	}
}

func TestDiskBackendMissingDir(t *testing.T) {
	d := DiskBackend{Dir: filepath.Join(t.TempDir(), "absent")}
	e, err := d.Get(context.Background(), "k")
	if err != nil {
		t.Errorf("Get in a missing directory: %v", err)
	}
	if e != nil {
		t.Errorf("Get in a missing directory returned an entry")
	}
	if _, err := d.List(context.Background()); err != nil {
		t.Errorf("List of a missing directory: %v", err)
	}
}

func chmod(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}
