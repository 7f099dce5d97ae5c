package store

import (
	"context"
	"os"
	"path/filepath"
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
