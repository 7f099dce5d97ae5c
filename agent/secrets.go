package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// In-memory file system magic numbers from statfs(2).
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

// SecretDir is a private directory on an in-memory file system (mode
// 0700, files 0600) that holds released secrets for the workload. Wipe
// overwrites every file with zeros before removing it, so that the
// secrets do not outlive the workload in the page cache of the tmpfs.
type SecretDir struct {
	Path string

	mu    sync.Mutex
	files []string
}

// NewSecretDir creates a private directory under base. An empty base
// means $XDG_RUNTIME_DIR when it is set, else /dev/shm. The base must be a
// tmpfs or ramfs, because secrets must never reach a disk, and the
// returned error names the file system type when it is not.
func NewSecretDir(base string) (*SecretDir, error) {
	if base == "" {
		base = defaultSecretBase()
	}
	if err := requireMemoryFS(base); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(base, "cloister-secrets-")
	if err != nil {
		return nil, fmt.Errorf("agent: creating the secret directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("agent: restricting the secret directory: %w", err)
	}
	return &SecretDir{Path: dir}, nil
}

func defaultSecretBase() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if requireMemoryFS(d) == nil {
			return d
		}
	}
	return "/dev/shm"
}

func requireMemoryFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("agent: checking the file system of %s: %w", dir, err)
	}
	if st.Type != tmpfsMagic && st.Type != ramfsMagic {
		return fmt.Errorf("agent: %s is not on a tmpfs or ramfs (file system type %#x), so secrets written there could reach a disk; pass a directory on a tmpfs such as /dev/shm", dir, st.Type)
	}
	return nil
}

// ValidSecretName reports whether name can be a file name in the secret
// directory: not empty, no path separator, not "." or "..", no NUL.
func ValidSecretName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid secret file name %q: use a plain file name without '/'", name)
	}
	return nil
}

// Write stores data as the file name with mode 0600 and returns its path.
func (d *SecretDir) Write(name string, data []byte) (string, error) {
	if err := ValidSecretName(name); err != nil {
		return "", err
	}
	path := filepath.Join(d.Path, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("agent: creating secret file: %w", err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("agent: writing secret file %s: %w", name, err)
	}
	d.mu.Lock()
	d.files = append(d.files, path)
	d.mu.Unlock()
	return path, nil
}

// Wipe overwrites every regular file in the directory tree, including
// files the workload created in subdirectories, with zeros, then removes
// the directory. Symbolic links are not followed, so a link cannot make it
// overwrite a file elsewhere. It keeps going after an error and returns
// all errors.
func (d *SecretDir) Wipe() error {
	var errs []error
	err := filepath.WalkDir(d.Path, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("agent: listing the secret directory: %w", err))
			}
			return nil
		}
		if e.Type().IsRegular() {
			errs = append(errs, overwrite(path))
		}
		return nil
	})
	errs = append(errs, err, os.RemoveAll(d.Path))
	return errors.Join(errs...)
}

// overwrite replaces the content of path with zeros of the same length
// and syncs it before the caller removes it.
func overwrite(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	zeros := make([]byte, 32<<10)
	for left := info.Size(); left > 0; {
		n := min(left, int64(len(zeros)))
		if _, err := f.Write(zeros[:n]); err != nil {
			return fmt.Errorf("overwriting %s: %w", path, err)
		}
		left -= n
	}
	return f.Sync()
}

// zero overwrites b in place, for secrets held in memory.
func zero(b []byte) {
	clear(b)
}
