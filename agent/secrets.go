package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

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
	// lock is the open lock file Path+lockSuffix, on which this process
	// holds an exclusive flock(2) while the directory exists.
	lock *os.File
}

// secretDirPrefix begins the name of every secret directory, and
// lockSuffix ends the name of the lock file beside it.
const (
	secretDirPrefix = "cloister-secrets-"
	lockSuffix      = ".lock"
)

// A lock file is created as tempLockPrefix, the directory name,
// tempLockSeparator and a random suffix, and then renamed. The separator
// cannot occur in a directory name, which ends in digits.
const (
	tempLockPrefix    = ".lock-"
	tempLockSeparator = ".tmp-"
	// tempLockMinAge is how old an unlocked temporary lock file must be
	// before a sweep removes it with its directory.
	tempLockMinAge = time.Minute
)

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
	dir, err := os.MkdirTemp(base, secretDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("agent: creating the secret directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("agent: restricting the secret directory: %w", err)
	}
	lock, err := lockSecretDir(dir)
	if err != nil {
		os.Remove(dir)
		return nil, err
	}
	return &SecretDir{Path: dir, lock: lock}, nil
}

// lockSecretDir creates the lock file dir+lockSuffix with an exclusive
// flock(2) on it. The kernel releases the lock when the process dies, even
// by SIGKILL, so SweepSecretDirs can tell a directory whose agent is gone.
// The file is locked under a temporary name and then renamed, so that a
// sweep never finds it unlocked.
func lockSecretDir(dir string) (*os.File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dir), tempLockPrefix+filepath.Base(dir)+tempLockSeparator)
	if err != nil {
		return nil, fmt.Errorf("agent: creating the secret directory's lock file: %w", err)
	}
	if err := unix.Flock(int(tmp.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("agent: locking %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dir+lockSuffix); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("agent: naming the secret directory's lock file: %w", err)
	}
	return tmp, nil
}

// SweepSecretDirs wipes the secret directories under base whose agent is
// gone, such as one killed with SIGKILL, and returns their paths. A
// directory counts as gone when its lock file exists, belongs to this
// user, and no process holds a lock on it. A directory whose wipe fails
// keeps its lock file, so that the next sweep tries again. Directories
// without a lock file are left alone, because nothing shows whether their
// agent still runs. An empty base means the default of NewSecretDir.
func SweepSecretDirs(base string) ([]string, error) {
	if base == "" {
		base = defaultSecretBase()
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("agent: listing %s for abandoned secret directories: %w", base, err)
	}
	var wiped []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		var dir string
		switch {
		case strings.HasPrefix(name, secretDirPrefix) && strings.HasSuffix(name, lockSuffix):
			dir = strings.TrimSuffix(name, lockSuffix)
		case strings.HasPrefix(name, tempLockPrefix+secretDirPrefix):
			// An agent stopped while it created the lock file, before
			// it wrote any secret into the directory. A young one may
			// belong to an agent that is about to lock it.
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < tempLockMinAge {
				continue
			}
			dir, _, _ = strings.Cut(strings.TrimPrefix(name, tempLockPrefix), tempLockSeparator)
		default:
			continue
		}
		ok, err := sweepSecretDir(filepath.Join(base, name), filepath.Join(base, dir))
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			wiped = append(wiped, filepath.Join(base, dir))
		}
	}
	return wiped, errors.Join(errs...)
}

// sweepSecretDir wipes dir and removes lockPath when no process holds a
// lock on lockPath and both belong to this user, and reports whether it
// wiped a directory.
func sweepSecretDir(lockPath, dir string) (bool, error) {
	if !ownedByMe(lockPath, false) {
		return false, nil
	}

	_, statErr := os.Lstat(dir)
	dirGone := errors.Is(statErr, fs.ErrNotExist)
	if !dirGone && !ownedByMe(dir, true) {
		return false, nil
	}

	f, err := os.OpenFile(lockPath, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, nil // removed meanwhile, or not ours to open
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false, nil // its agent still runs
	}
	// Another sweep may have removed the file between the open and the
	// lock, and a new agent cannot reuse its name, so the lock only counts
	// while the path still names the locked file.
	if !samePath(f, lockPath) {
		return false, nil
	}

	if dirGone {
		// Its agent stopped between removing the directory and the
		// lock file.
		return false, removeIfExists(lockPath)
	}
	d := &SecretDir{Path: dir}
	if err := d.Wipe(); err != nil {
		return false, fmt.Errorf("agent: wiping the abandoned secret directory %s (kept for the next sweep): %w", dir, err)
	}
	return true, removeIfExists(lockPath)
}

// samePath reports whether path still names the file f has open.
func samePath(f *os.File, path string) bool {
	open, err := f.Stat()
	if err != nil {
		return false
	}
	named, err := os.Lstat(path)
	return err == nil && os.SameFile(open, named)
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ownedByMe reports whether path, not followed if it is a symbolic link,
// is a directory (dir true) or a regular file owned by this process's
// user.
func ownedByMe(path string, dir bool) bool {
	info, err := os.Lstat(path)
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Getuid() {
		return false
	}
	if dir {
		return info.IsDir()
	}
	return info.Mode().IsRegular()
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
	n, werr := writeSecretFile(f, data)
	if werr != nil {
		// The part already written is overwritten with zeros before the
		// file is removed, as Wipe does, so that its bytes do not stay in
		// freed tmpfs pages. An overwrite error joins the write error.
		werr = errors.Join(werr, zeroWritten(f, int64(n)))
	}
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		if werr == nil {
			// Every byte was written but the descriptor is closed.
			err = errors.Join(err, overwrite(path))
		}
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
// the directory. It first gives the owner write access to each file and
// full access to each directory, because a workload may have made them
// read-only. Symbolic links are not followed, so a link cannot make it
// overwrite or change a file elsewhere. It keeps going after an error and
// returns all errors. When it fails, the lock file stays, so that a later
// agent's SweepSecretDirs tries again.
func (d *SecretDir) Wipe() error {
	var errs []error
	err := filepath.WalkDir(d.Path, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("agent: listing the secret directory: %w", err))
			}
			return nil
		}
		switch {
		case e.IsDir():
			// WalkDir reads a directory after this call, so the
			// access granted here lets it list the entries.
			errs = append(errs, os.Chmod(path, 0o700))
		case e.Type().IsRegular():
			errs = append(errs, os.Chmod(path, 0o600), overwrite(path))
		}
		return nil
	})
	errs = append(errs, err, os.RemoveAll(d.Path))
	wipeErr := errors.Join(errs...)
	if d.lock != nil {
		if wipeErr == nil {
			// Removed before it is unlocked, so that a sweep never
			// finds it unlocked.
			wipeErr = os.Remove(d.Path + lockSuffix)
		}
		wipeErr = errors.Join(wipeErr, d.lock.Close())
		d.lock = nil
	}
	return wipeErr
}

// writeSecretFile writes a secret file's content. Tests replace it to make
// a write fail partway.
var writeSecretFile = (*os.File).Write

// overwrite replaces the content of path with zeros of the same length
// and syncs it before the caller removes it.
func overwrite(path string) error {
	// O_NOFOLLOW, so that a file replaced by a link after the walk listed
	// it does not make the wipe overwrite another file.
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	return zeroFile(f, info.Size())
}

// zeroWritten overwrites what a failed write left in f with zeros. It
// covers the larger of written, the count the write returned, and the
// file's size.
func zeroWritten(f *os.File, written int64) error {
	size := written
	if info, err := f.Stat(); err == nil {
		size = max(size, info.Size())
	}
	return zeroFile(f, size)
}

// zeroFile overwrites the first size bytes of f with zeros from offset 0,
// whatever f's current offset, and syncs f.
func zeroFile(f *os.File, size int64) error {
	zeros := make([]byte, 32<<10)
	for off := int64(0); off < size; {
		n := min(size-off, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("overwriting %s: %w", f.Name(), err)
		}
		off += n
	}
	return f.Sync()
}

// zero overwrites b in place, for secrets held in memory.
func zero(b []byte) {
	clear(b)
}
