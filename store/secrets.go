package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/cloister-dev/cloister/internal/resourcepath"
)

// ValidateResourcePath checks that path is a KBS resource path
// "<repository>/<type>/<tag>" by the rule the key broker serves (see
// resourcepath.Check). The error wraps ErrInvalid.
func ValidateResourcePath(path string) error {
	if err := resourcepath.Check(path); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// MaxSecretSize is the largest secret value PutSecret accepts, in bytes.
// KBS resources are keys, certificates and small configuration files.
const MaxSecretSize = 1 << 20

func (o *ops) PutSecret(ctx context.Context, path string, value []byte) (SecretInfo, error) {
	if err := ValidateResourcePath(path); err != nil {
		return SecretInfo{}, err
	}
	if len(value) > MaxSecretSize {
		return SecretInfo{}, fmt.Errorf("%w: secret %s is %d bytes, more than the maximum %d", ErrInvalid, path, len(value), MaxSecretSize)
	}
	mk := o.s.cfg.MasterKey
	if mk == nil {
		return SecretInfo{}, errors.New("store: no master key configured; secrets cannot be stored")
	}

	if err := o.checkSealingKey(ctx, mk, path); err != nil {
		return SecretInfo{}, err
	}
	// A store that an older release wrote is converted before its first
	// versioned row, because legacy rows beside versioned ones are never
	// converted or released.
	if _, err := o.convertLegacySecrets(ctx, mk); err != nil {
		return SecretInfo{}, fmt.Errorf("secret %s not stored: %w", path, err)
	}

	var version int64
	if err := o.q.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) + 1 FROM secrets WHERE path = $1`, path).Scan(&version); err != nil {
		return SecretInfo{}, fmt.Errorf("store: next version of secret %s: %w", path, err)
	}
	ciphertext, wrapped, err := sealSecret(mk, path, version, value)
	if err != nil {
		return SecretInfo{}, fmt.Errorf("store: encrypt secret %s: %w", path, err)
	}
	info := SecretInfo{Path: path, Version: version, Size: len(value), MasterKeyID: mk.ID(), Created: fromMicros(micros(o.s.cfg.now()))}
	_, err = o.q.ExecContext(ctx,
		`INSERT INTO secrets (path, version, ciphertext, wrapped_key, master_key_id, size, created, seal_format)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		path, version, ciphertext, wrapped, mk.ID(), len(value), micros(info.Created), sealFormatVersioned)
	if isUniqueViolation(err) {
		return SecretInfo{}, fmt.Errorf("%w: secret %s version %d was written concurrently; retry", ErrConflict, path, version)
	}
	if err != nil {
		return SecretInfo{}, fmt.Errorf("store: insert secret %s: %w", path, err)
	}
	return info, nil
}

// checkSealingKey returns ErrForeignSecrets when the store contains a
// secret sealed under a master key that this Store does not have. A secret
// sealed under mk would then open only on the services that use mk, while
// the others could open only the older secrets, as happens when replicas of
// one database were started with different master keys. On PostgreSQL a
// transaction lock makes replicas check and insert one after the other.
func (o *ops) checkSealingKey(ctx context.Context, mk *MasterKey, path string) error {
	if err := o.lockSealing(ctx); err != nil {
		return err
	}
	rows, err := o.q.QueryContext(ctx, `SELECT DISTINCT master_key_id FROM secrets WHERE master_key_id <> $1`, mk.ID())
	if err != nil {
		return fmt.Errorf("store: list the master keys of stored secrets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var keyID string
		if err := rows.Scan(&keyID); err != nil {
			return fmt.Errorf("store: list the master keys of stored secrets: %w", err)
		}
		if o.s.keys[keyID] == nil {
			return foreignSecretsError(fmt.Sprintf("secret %s not stored, because the store contains secrets sealed under master key %s and this service uses %s; "+
				"start every service that shares the store with the same master key (cloister serve --master-key-file), "+
				"or, to move to %s, run cloister secret rewrap --old-master-key-file first", path, keyID, mk.ID(), mk.ID()))
		}
	}
	return rows.Err()
}

// lockSealing takes, on PostgreSQL, the transaction lock that serializes
// PutSecret and RewrapSecrets across replicas. SQLite's single write lock
// serializes them already.
func (o *ops) lockSealing(ctx context.Context) error {
	if !o.s.d.postgres {
		return nil
	}
	if _, err := o.q.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, sealingLockID); err != nil {
		return fmt.Errorf("store: lock secret sealing: %w", err)
	}
	return nil
}

// sealingLockID is the PostgreSQL advisory lock key that serializes
// checkSealingKey and the insert that follows, and RewrapSecrets, across
// replicas. The value is arbitrary but fixed: the first 8 bytes of
// SHA-256("cloister secret sealing key").
const sealingLockID int64 = 0x1ec1573989b16c5b

// foreignSecretsError is an ErrForeignSecrets whose message explains the
// mismatch in full.
type foreignSecretsError string

func (e foreignSecretsError) Error() string        { return string(e) }
func (e foreignSecretsError) Is(target error) bool { return target == ErrForeignSecrets }

func (o *ops) GetSecret(ctx context.Context, path string) (*Secret, error) {
	sealed, err := o.getSealedSecret(ctx, path)
	if err != nil {
		return nil, err
	}
	return o.s.OpenSecret(sealed)
}

func (o *ops) ListSecrets(ctx context.Context, prefix string) ([]SecretInfo, error) {
	rows, err := o.q.QueryContext(ctx,
		`SELECT s.path, s.version, s.size, s.master_key_id, s.created FROM secrets s
		 WHERE substr(s.path, 1, $2) = $1
		   AND s.version = (SELECT MAX(version) FROM secrets WHERE path = s.path)
		 ORDER BY s.path`, prefix, utf8.RuneCountInString(prefix))
	if err != nil {
		return nil, fmt.Errorf("store: list secrets: %w", err)
	}
	defer rows.Close()

	var list []SecretInfo
	for rows.Next() {
		var (
			info    SecretInfo
			created int64
		)
		if err := rows.Scan(&info.Path, &info.Version, &info.Size, &info.MasterKeyID, &created); err != nil {
			return nil, fmt.Errorf("store: list secrets: %w", err)
		}
		info.Created = fromMicros(created)
		list = append(list, info)
	}
	return list, rows.Err()
}

func (o *ops) DeleteSecret(ctx context.Context, path string) error {
	res, err := o.q.ExecContext(ctx, `DELETE FROM secrets WHERE path = $1`, path)
	if err != nil {
		return fmt.Errorf("store: delete secret %s: %w", path, err)
	}
	return requireRows(res, "secret "+path)
}

// requireRows returns ErrNotFound naming what when res affected no row.
func requireRows(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}
