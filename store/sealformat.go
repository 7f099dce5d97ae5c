package store

import (
	"context"
	"fmt"
)

// legacyVersion is one stored secret version in the legacy seal format.
type legacyVersion struct {
	path       string
	version    int64
	keyID      string
	ciphertext []byte
	wrappedKey []byte
}

// convertLegacySecrets seals every legacy-format secret version again in
// the versioned format under a new data key wrapped by mk, and returns how
// many it converted. It runs inside a transaction that holds the sealing
// lock, and appends an admin audit record when it converts any.
//
// It converts only a store whose rows are all in the legacy format, as an
// older release leaves it, and then every row at once. A legacy row beside
// versioned rows was not written before the upgrade, so it is left for
// GetSecret to reject rather than accepted as the version of its row. When
// a row's master key is missing or a row does not open, it converts
// nothing and returns an error naming that row.
func (o *ops) convertLegacySecrets(ctx context.Context, mk *MasterKey) (int, error) {
	var legacy, versioned bool
	err := o.q.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM secrets WHERE seal_format = $1), EXISTS (SELECT 1 FROM secrets WHERE seal_format <> $1)`,
		sealFormatLegacy).Scan(&legacy, &versioned)
	if err != nil {
		return 0, fmt.Errorf("store: read the seal formats of stored secrets: %w", err)
	}
	if !legacy || versioned {
		return 0, nil
	}

	list, err := o.listLegacySecrets(ctx)
	if err != nil {
		return 0, err
	}
	for _, v := range list {
		if err := o.convertLegacySecret(ctx, mk, v); err != nil {
			return 0, err
		}
	}

	_, err = o.AppendAudit(ctx, AuditRecord{Action: AuditAdmin, Requester: "secret-seal-upgrade", Verdict: "applied",
		Reason: fmt.Sprintf("converted %d secret versions to the seal format that binds the version, under master key %s", len(list), mk.ID())})
	if err != nil {
		return 0, err
	}
	return len(list), nil
}

// listLegacySecrets reads every legacy-format secret version.
func (o *ops) listLegacySecrets(ctx context.Context) ([]legacyVersion, error) {
	rows, err := o.q.QueryContext(ctx,
		`SELECT path, version, master_key_id, ciphertext, wrapped_key FROM secrets WHERE seal_format = $1 ORDER BY path, version`,
		sealFormatLegacy)
	if err != nil {
		return nil, fmt.Errorf("store: list legacy-format secrets: %w", err)
	}
	defer rows.Close()
	var list []legacyVersion
	for rows.Next() {
		var v legacyVersion
		if err := rows.Scan(&v.path, &v.version, &v.keyID, &v.ciphertext, &v.wrappedKey); err != nil {
			return nil, fmt.Errorf("store: list legacy-format secrets: %w", err)
		}
		list = append(list, v)
	}
	return list, rows.Err()
}

// convertLegacySecret opens v in the legacy format and stores it again in
// the versioned format under mk.
func (o *ops) convertLegacySecret(ctx context.Context, mk *MasterKey, v legacyVersion) error {
	old := o.s.keys[v.keyID]
	if old == nil {
		return fmt.Errorf("%w: secret %s version %d is wrapped by master key %s, which is not configured, so no secret was converted to the versioned seal format; "+
			"add that key with cloister secret rewrap --old-master-key-file",
			ErrDecrypt, v.path, v.version, v.keyID)
	}
	value, err := openSecret(old, sealFormatLegacy, v.path, v.version, v.ciphertext, v.wrappedKey)
	if err != nil {
		return fmt.Errorf("%w: secret %s version %d in the legacy seal format does not open with %s (it was changed after it was stored), "+
			"so no secret was converted to the versioned seal format; delete the secret with cloister secret rm %s and store it again",
			ErrDecrypt, v.path, v.version, old, v.path)
	}
	ciphertext, wrapped, err := sealSecret(mk, v.path, v.version, value)
	clear(value)
	if err != nil {
		return fmt.Errorf("store: encrypt secret %s version %d: %w", v.path, v.version, err)
	}
	_, err = o.q.ExecContext(ctx,
		`UPDATE secrets SET ciphertext = $1, wrapped_key = $2, master_key_id = $3, seal_format = $4 WHERE path = $5 AND version = $6`,
		ciphertext, wrapped, mk.ID(), sealFormatVersioned, v.path, v.version)
	if err != nil {
		return fmt.Errorf("store: convert secret %s version %d: %w", v.path, v.version, err)
	}
	return nil
}

// convertLegacySecretsOnOpen runs convertLegacySecrets in a transaction of
// its own. A failure is logged, not returned, because the service still
// serves everything but secrets, and GetSecret names the fix.
func (s *sqlStore) convertLegacySecretsOnOpen(ctx context.Context) {
	// Most opens find nothing to convert, and this read takes no write lock.
	var legacy bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM secrets WHERE seal_format = $1)`, sealFormatLegacy).Scan(&legacy)
	if err != nil {
		s.cfg.logger().Warn("could not read the seal formats of stored secrets", "error", err)
		return
	}
	if !legacy {
		return
	}

	var n int
	err = s.Tx(ctx, func(tx Tx) error {
		o := tx.(*ops)
		if err := o.lockSealing(ctx); err != nil {
			return err
		}
		var err error
		n, err = o.convertLegacySecrets(ctx, s.cfg.MasterKey)
		return err
	})
	if err != nil {
		s.cfg.logger().Warn("secrets in the legacy seal format, which does not bind the version, were not converted and are not released until they are", "error", err)
		return
	}
	if n > 0 {
		s.cfg.logger().Info("converted secrets to the seal format that binds the version", "versions", n, "master_key_id", s.cfg.MasterKey.ID())
	}
}
