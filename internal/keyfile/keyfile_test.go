package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "service.key")

	if err := Create(path, []byte("first")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	wantMode(t, path, 0o600)
	wantMode(t, dir, 0o700)

	err := Create(path, []byte("second"))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file = %v, want fs.ErrExist", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "first" {
		t.Errorf("key file = %q after a second Create, want %q", got, "first")
	}
	wantOnly(t, dir, "service.key")
}

// Of several concurrent Create calls on one path exactly one succeeds, the
// file holds its content, and no temporary file stays behind.
func TestCreateConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "service.key")
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { errs[i] = Create(path, []byte(fmt.Sprintf("key %d", i))) })
	}
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both created the file", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v, want fs.ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the file")
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("key %d", winner); string(got) != want {
		t.Errorf("key file = %q, want the winner's %q", got, want)
	}
	wantOnly(t, dir, "service.key")
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %#o, want %#o", path, got, want)
	}
}

func wantOnly(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s contains %v, want only %s", dir, names, name)
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "service.key")
	calls := 0
	generate := func() ([]byte, error) {
		calls++
		return []byte(fmt.Sprintf("key %d", calls)), nil
	}

	content, created, err := LoadOrCreate(path, generate)
	if err != nil || !created || string(content) != "key 1" {
		t.Fatalf("first LoadOrCreate = %q, created %v, %v; expected a new key 1", content, created, err)
	}
	content, created, err = LoadOrCreate(path, generate)
	if err != nil || created || string(content) != "key 1" {
		t.Errorf("second LoadOrCreate = %q, created %v, %v; expected key 1 read back", content, created, err)
	}
	if calls != 1 {
		t.Errorf("generate called %d times, expected once", calls)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path, generate); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("key file readable by others: error %v, expected one that names chmod 600 and the path", err)
	}
}

func TestLoadOrCreateGenerateFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "service.key")
	_, _, err := LoadOrCreate(path, func() ([]byte, error) { return nil, errors.New("no entropy") })
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, expected one that names %s", err, path)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed generate left %s behind: %v", path, err)
	}
}
