package collateral

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DiskBackend stores cache entries as JSON files in a directory, one file
// per key named by the key's SHA-256. Writes are atomic (temporary file,
// fsync, rename), so a crash leaves either the old or the new entry.
type DiskBackend struct {
	Dir string
}

func (d DiskBackend) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(d.Dir, hex.EncodeToString(sum[:])+".json")
}

// Get reads the entry for key, and a missing file is not an error. It rejects
// a cache directory that another user owns or may write.
func (d DiskBackend) Get(_ context.Context, key string) (*Entry, error) {
	if err := checkPrivateDir(d.Dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	data, err := os.ReadFile(d.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("corrupt cache file %s: %w", d.path(key), err)
	}
	if e.Key != key {
		return nil, fmt.Errorf("cache file %s holds key %q, expected %q", d.path(key), e.Key, key)
	}
	return &e, nil
}

// Put writes e atomically, into a cache directory of the current user's
// own.
func (d DiskBackend) Put(_ context.Context, e *Entry) error {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	if err := checkPrivateDir(d.Dir); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.Dir, ".entry-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), d.path(e.Key))
}

// List returns every entry, sorted by key. Unreadable files are skipped.
func (d DiskBackend) List(ctx context.Context) ([]*Entry, error) {
	if err := checkPrivateDir(d.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	names, err := os.ReadDir(d.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Entry
	for _, n := range names {
		if !strings.HasSuffix(n.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d.Dir, n.Name()))
		if err != nil {
			continue
		}
		var e Entry
		if json.Unmarshal(data, &e) == nil && e.Key != "" {
			out = append(out, &e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// DefaultCacheDir returns the per-user collateral cache directory.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		// Without HOME or XDG_CACHE_HOME, the cache goes to the shared
		// temporary directory, under a name of this user's. DiskBackend
		// rejects it if another user created it first.
		dir = filepath.Join(os.TempDir(), "cloister-"+strconv.Itoa(os.Getuid()))
	}
	return filepath.Join(dir, "cloister", "collateral")
}
