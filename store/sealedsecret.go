package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SealedSecret is one version of a secret as stored: the value encrypted
// under its data key, and the data key wrapped by a master key. It contains
// no plaintext, so a cache in front of the store may keep it and call
// OpenSecret per use.
type SealedSecret struct {
	SecretInfo
	ciphertext []byte
	wrappedKey []byte
	format     int
	// versionedStored is read only for a legacy-format row: whether the
	// store contains any row in the versioned format, which decides the error
	// that OpenSecret returns.
	versionedStored bool
}

func (s *sqlStore) GetSealedSecret(ctx context.Context, path string) (*SealedSecret, error) {
	return s.autocommit().getSealedSecret(ctx, path)
}

func (s *sqlStore) OpenSecret(sealed *SealedSecret) (*Secret, error) {
	if sealed == nil {
		return nil, fmt.Errorf("%w: no sealed secret to open", ErrInvalid)
	}
	mk := s.keys[sealed.MasterKeyID]
	if mk == nil {
		return nil, fmt.Errorf("%w: secret %s version %d is wrapped by master key %s, which this service does not have; start every replica with that key (cloister serve --master-key-file or CLOISTER_MASTER_KEY), or rewrap the secret under the current key with cloister secret rewrap --old-master-key-file",
			ErrDecrypt, sealed.Path, sealed.Version, sealed.MasterKeyID)
	}
	if sealed.format == sealFormatLegacy {
		return nil, legacySealError(sealed)
	}
	value, err := openSecret(mk, sealed.format, sealed.Path, sealed.Version, sealed.ciphertext, sealed.wrappedKey)
	if err != nil {
		return nil, err
	}
	return &Secret{SecretInfo: sealed.SecretInfo, Value: value}, nil
}

// getSealedSecret reads the latest version of the secret at path.
func (o *ops) getSealedSecret(ctx context.Context, path string) (*SealedSecret, error) {
	var (
		sealed  SealedSecret
		created int64
	)
	err := o.q.QueryRowContext(ctx,
		`SELECT path, version, ciphertext, wrapped_key, master_key_id, size, created, seal_format
		 FROM secrets WHERE path = $1 ORDER BY version DESC LIMIT 1`, path).
		Scan(&sealed.Path, &sealed.Version, &sealed.ciphertext, &sealed.wrappedKey, &sealed.MasterKeyID, &sealed.Size, &created, &sealed.format)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("secret %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read secret %s: %w", path, err)
	}
	sealed.Created = fromMicros(created)
	if sealed.format == sealFormatLegacy {
		err := o.q.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM secrets WHERE seal_format <> $1)`, sealFormatLegacy).Scan(&sealed.versionedStored)
		if err != nil {
			return nil, fmt.Errorf("store: read the seal formats of stored secrets: %w", err)
		}
	}
	return &sealed, nil
}

// legacySealError explains why a legacy-format value is not released. Its
// additional data does not name the version, so the value may be an older
// version's, copied into this row.
func legacySealError(sealed *SealedSecret) error {
	if sealed.versionedStored {
		return fmt.Errorf("%w: secret %s version %d is sealed in the legacy format, which does not bind the version, "+
			"while the other stored secrets were converted to the versioned format, so this value was not converted: "+
			"it was written by a replica of an older Cloister release that still runs, or copied from an older version of a secret; "+
			"stop every replica of an older release and store the secret again with cloister secret put",
			ErrDecrypt, sealed.Path, sealed.Version)
	}
	return fmt.Errorf("%w: secret %s version %d is sealed in the legacy format, which does not bind the version, "+
		"and is released only after the store converts it to the versioned format; opening the store with the master key "+
		"of every stored secret converts them all, as cloister secret rewrap --master-key-file CURRENT --old-master-key-file OLD does, "+
		"and names any secret that cannot be converted",
		ErrDecrypt, sealed.Path, sealed.Version)
}
