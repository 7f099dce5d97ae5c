package store

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSQLiteFilesPrivate(t *testing.T) {
	// A data directory that others may read, as an operator might create.
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := open(t, Config{DataDir: dir})
	if _, err := s.AppendAudit(context.Background(), AuditRecord{Action: AuditAdmin, Requester: "test"}); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{SQLiteFile, SQLiteFile + "-wal", SQLiteFile + "-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", name, mode)
		}
	}
}

func TestSQLiteSharedFileWarning(t *testing.T) {
	tests := []struct {
		name     string
		existing os.FileMode // mode of a database file created before Open, or 0 for none
		wantWarn bool
	}{
		{"new database", 0, false},
		{"existing private database", 0o600, false},
		{"existing database readable by others", 0o644, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, SQLiteFile)
			if tt.existing != 0 {
				if err := os.WriteFile(file, nil, tt.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(file, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			open(t, Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

			warned := strings.Contains(logs.String(), "readable or writable by group or others")
			if warned != tt.wantWarn {
				t.Errorf("warning logged = %v, want %v; logs:\n%s", warned, tt.wantWarn, logs.String())
			}
			if tt.wantWarn && !strings.Contains(logs.String(), "chmod 600 "+file) {
				t.Errorf("warning does not name the fix; logs:\n%s", logs.String())
			}
		})
	}
}
