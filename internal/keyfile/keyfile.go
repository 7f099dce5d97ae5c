// Package keyfile reads and creates files for private keys. A reader
// never sees a partial key, no writer replaces an existing one, and a key
// file that other users can read is rejected.
//
// Two processes that start at once, such as two services on one data
// directory, may both find a key file missing and both generate a key.
// Creating the file with O_EXCL and then writing to it lets the second
// process read an empty or half-written file. Create instead writes the key
// to a temporary file, syncs it, and links it under the final name, which
// fails when that name exists. The key so appears complete or not at all.
package keyfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Create writes content to a new file at path with mode 0600, creating its
// directory with mode 0700 when needed. It returns an error wrapping
// fs.ErrExist when path exists, and leaves that file untouched.
func Create(path string, content []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}

	// CreateTemp opens the file with mode 0600.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create key file in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync key file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key file %s: %w", path, err)
	}

	// Unlike a rename, a link does not replace an existing file.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create key file %s: %w", path, fs.ErrExist)
		}
		// NOTE: there is no fallback for a filesystem without hard links,
		// such as FAT, so no key file can be created there.
		return fmt.Errorf("create key file %s: %w; put the directory on a filesystem that supports hard links", path, err)
	}
	return syncDir(dir)
}

// syncDir makes the new directory entry durable, so that a crash right
// after Create does not lose a key that may already protect data.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync key directory %s: %w", dir, err)
	}
	return nil
}

// Read returns the content of the key file at path. It rejects a file that
// group or others can access, because whoever reads a key can use it. A
// missing file gives an error wrapping fs.ErrNotExist.
func Read(path string) ([]byte, error) {
	// The mode is checked on the open file, so that it is the mode of the
	// file that is read.
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %#o, which lets other users read it; run chmod 600 %s", path, perm, path)
	}
	return io.ReadAll(f)
}

// LoadOrCreate returns the content of the key file at path as Read does.
// When the file does not exist, it creates it with the content that
// generate returns and reports created true. When another process creates
// the file first, it returns that process's content, so that both use one
// key.
func LoadOrCreate(path string, generate func() ([]byte, error)) (content []byte, created bool, err error) {
	content, err = Read(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return content, false, err
	}

	content, err = generate()
	if err != nil {
		return nil, false, fmt.Errorf("generate key for %s: %w", path, err)
	}
	err = Create(path, content)
	if errors.Is(err, fs.ErrExist) {
		content, err = Read(path)
		return content, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return content, true, nil
}
