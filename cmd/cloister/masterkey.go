package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cloister-dev/cloister/store"
)

// legacyMasterKeyFile is the master key's file name in the data directory,
// where versions before --master-key-file generated it.
const legacyMasterKeyFile = "master.key"

// masterKeyConfig is the set of master key sources of cloister serve.
type masterKeyConfig struct {
	flagPath string // --master-key-file, or empty
	envValue string // content of CLOISTER_MASTER_KEY, or empty
	dataDir  string
	// sqlite is true when the secrets are in the SQLite database in
	// dataDir, so that no key file may lie in dataDir.
	sqlite bool
}

// serveMasterKey is the master key of cloister serve and where it came from.
type serveMasterKey struct {
	key *store.MasterKey
	// path is the key file, or empty when the key came from
	// CLOISTER_MASTER_KEY.
	path string
	// generated is true when the key is new and not yet written to path.
	// checkStore writes it once the store is open.
	generated bool
}

// loadServeMasterKey finds the master key of cloister serve, in this order:
//
//  1. The file named by --master-key-file, which must exist.
//  2. CLOISTER_MASTER_KEY. Setting both 1 and 2 is an error, because
//     either choice could silently pick the wrong key.
//  3. master.key in the data directory, which earlier versions generated,
//     with a warning.
//  4. The per-user file store.DefaultMasterKeyFile. When it does not exist
//     and the store is SQLite, a new key is generated in memory and
//     checkStore writes it.
//
// A key file inside the data directory of a SQLite store is rejected,
// except for case 3. With PostgreSQL no key is generated: replicas on other
// hosts would each generate their own, and a secret stored through one of
// them would not decrypt on the others.
func loadServeMasterKey(cfg masterKeyConfig, logger *slog.Logger) (*serveMasterKey, error) {
	if cfg.flagPath != "" && cfg.envValue != "" {
		return nil, usageError("both --master-key-file %s and %s are set; pass the master key in only one of them", cfg.flagPath, store.MasterKeyEnv)
	}
	legacyPath := filepath.Join(cfg.dataDir, legacyMasterKeyFile)
	legacyExists, err := fileExists(legacyPath)
	if err != nil {
		return nil, usageError("check for a master key file in the data directory failed: %v; make %s accessible to this user", err, cfg.dataDir)
	}

	switch {
	case cfg.flagPath != "":
		if err := rejectKeyInDataDir(cfg, "--master-key-file "+cfg.flagPath, cfg.flagPath); err != nil {
			return nil, err
		}
		key, err := store.ReadMasterKeyFile(cfg.flagPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, usageError("--master-key-file %s not found; copy there the key file that sealed the stored secrets (the one other replicas use), or, for a new store, create a key with: (umask 077 && head -c 32 /dev/urandom | base64 > %s)", cfg.flagPath, cfg.flagPath)
		}
		if err != nil {
			return nil, usageError("--master-key-file: %v", err)
		}
		if legacyExists && !sameFile(legacyPath, cfg.flagPath) {
			warnUnusedLegacyKey(logger, legacyPath)
		}
		return &serveMasterKey{key: key, path: cfg.flagPath}, nil

	case cfg.envValue != "":
		key, err := store.ParseMasterKey(cfg.envValue)
		if err != nil {
			return nil, usageError("%s: %v", store.MasterKeyEnv, err)
		}
		if legacyExists {
			warnUnusedLegacyKey(logger, legacyPath)
		}
		return &serveMasterKey{key: key}, nil

	case legacyExists:
		// Secrets sealed by an earlier version decrypt only with this key,
		// so it is used rather than replaced.
		key, err := store.ReadMasterKeyFile(legacyPath)
		if err != nil {
			return nil, usageError("%v", err)
		}
		logger.Warn("the master key file lies in the data directory, where earlier versions created it; move it out of the data directory and pass its new path in --master-key-file",
			"path", legacyPath, "key_id", key.ID())
		return &serveMasterKey{key: key, path: legacyPath}, nil
	}

	path, err := store.DefaultMasterKeyFile()
	if err != nil {
		return nil, usageError("%v", err)
	}
	if err := rejectKeyInDataDir(cfg, "the default master key file "+path, path); err != nil {
		return nil, err
	}
	key, err := store.ReadMasterKeyFile(path)
	if err == nil {
		return &serveMasterKey{key: key, path: path}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, usageError("%v", err)
	}
	if !cfg.sqlite {
		return nil, usageError("no master key at %s: with --database-url the service does not generate one, because every replica that shares the database needs the same key. "+
			"If other replicas already use the database, copy their key file there. Otherwise create it once with (umask 077 && mkdir -p %s && head -c 32 /dev/urandom | base64 > %s) and copy the file to the same path on each replica's host. "+
			"Or pass the key in --master-key-file or %s",
			path, filepath.Dir(path), path, store.MasterKeyEnv)
	}
	if key, err = store.GenerateMasterKey(); err != nil {
		return nil, err
	}
	return &serveMasterKey{key: key, path: path, generated: true}, nil
}

// checkStore runs the master key steps that need the open store st. It
// writes a generated key to its file only when st contains no secret,
// because a secret sealed under another key would not decrypt with it. A
// failed start so leaves no key file behind that a later start would use
// unchecked. For a loaded key it logs the key ID, and warns when st contains
// secrets sealed under other keys, which otherwise shows only when a guest
// requests one of them.
func (k *serveMasterKey) checkStore(ctx context.Context, st store.Store, logger *slog.Logger) error {
	unopenable, _, err := st.UnopenableSecrets(ctx)
	if err != nil {
		return fmt.Errorf("list secrets to check their master keys: %w", err)
	}
	foreign := len(unopenable)
	var keyIDs []string
	for _, s := range unopenable {
		if !slices.Contains(keyIDs, s.MasterKeyID) {
			keyIDs = append(keyIDs, s.MasterKeyID)
		}
	}
	slices.Sort(keyIDs)

	if k.generated {
		if foreign > 0 {
			return usageError("the store contains %d secrets sealed under master key %s, but the master key file %s is missing; pass the key that sealed them in --master-key-file or %s",
				foreign, strings.Join(keyIDs, ", "), k.path, store.MasterKeyEnv)
		}
		err := store.WriteMasterKeyFile(k.path, k.key)
		if errors.Is(err, fs.ErrExist) {
			// The store was opened with this process's key, so it cannot
			// switch to the one that another process wrote.
			return usageError("another process created the master key file %s during this start; start cloister serve again to use that key", k.path)
		}
		if err != nil {
			return usageError("%v; pass --master-key-file PATH or set %s", err, store.MasterKeyEnv)
		}
		k.generated = false
		logger.Info("generated master key", "key_id", k.key.ID(), "path", k.path)
		return nil
	}

	if k.path == "" {
		logger.Info("using master key", "key_id", k.key.ID(), "source", store.MasterKeyEnv)
	} else {
		logger.Info("using master key", "key_id", k.key.ID(), "path", k.path)
	}
	if foreign > 0 {
		logger.Warn("secrets sealed under another master key cannot be released, and this service stores no new secret until they are rewrapped; start with the key that sealed them, or, once every replica uses this key, rotate them to it with cloister secret rewrap",
			"key_id", k.key.ID(), "secrets", foreign, "sealed_under", strings.Join(keyIDs, ", "))
	}
	return nil
}

// rejectKeyInDataDir returns a usage error when cfg has a SQLite store and
// path lies inside its data directory, because then the key sits beside the
// secrets it decrypts. With PostgreSQL the data directory contains no
// secrets. The error names the key file by description, such as
// "--master-key-file PATH".
func rejectKeyInDataDir(cfg masterKeyConfig, description, path string) error {
	if !cfg.sqlite {
		return nil
	}
	inside, err := isInside(cfg.dataDir, path)
	if err != nil {
		return usageError("%s: %v", description, err)
	}
	if inside {
		return usageError("%s lies in the data directory %s, beside the SQLite database whose secrets it decrypts; move the key out of %s and pass its new path in --master-key-file, or set %s",
			description, cfg.dataDir, cfg.dataDir, store.MasterKeyEnv)
	}
	return nil
}

func warnUnusedLegacyKey(logger *slog.Logger, path string) {
	logger.Warn("a master key file lies in the data directory but is not used; move it out of the data directory, or delete it once no secret was sealed under it (cloister secret ls lists each secret's key ID)",
		"path", path)
}

// isInside reports whether path is dir or lies below it, after resolving
// symbolic links in both.
func isInside(dir, path string) (bool, error) {
	dir, err := resolvePath(dir)
	if err != nil {
		return false, err
	}
	path, err = resolvePath(path)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return false, err
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)), nil
}

// resolvePath returns path as an absolute path with symbolic links
// resolved. Components that do not exist yet are kept as they are.
func resolvePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err == nil {
		return resolved, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	parent := filepath.Dir(abs)
	if parent == abs {
		return abs, nil
	}
	resolvedParent, err := resolvePath(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(resolvedParent, filepath.Base(abs)), nil
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

func sameFile(a, b string) bool {
	infoA, errA := os.Stat(a)
	infoB, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(infoA, infoB)
}
