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
	value, err := openSecret(mk, sealed.Path, sealed.ciphertext, sealed.wrappedKey)
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
		`SELECT path, version, ciphertext, wrapped_key, master_key_id, size, created
		 FROM secrets WHERE path = $1 ORDER BY version DESC LIMIT 1`, path).
		Scan(&sealed.Path, &sealed.Version, &sealed.ciphertext, &sealed.wrappedKey, &sealed.MasterKeyID, &sealed.Size, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("secret %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read secret %s: %w", path, err)
	}
	sealed.Created = fromMicros(created)
	return &sealed, nil
}
