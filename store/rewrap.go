package store

import (
	"context"
	"errors"
	"fmt"
)

func (s *sqlStore) RewrapSecrets(ctx context.Context) (int, error) {
	current := s.cfg.MasterKey
	if current == nil {
		return 0, errors.New("store: no master key configured; set the new master key before rewrapping")
	}

	type version struct {
		path    string
		version int64
		keyID   string
		wrapped []byte
		format  int
	}
	count, converted := 0, 0
	err := s.Tx(ctx, func(tx Tx) error {
		// The lock makes a PutSecret of a replica that still seals under
		// an old key either commit before the list below, which then
		// contains its secret, or wait and find the rewrapped secrets.
		if err := tx.(*ops).lockSealing(ctx); err != nil {
			return err
		}
		// A store that an older release wrote is converted first, which
		// also wraps its data keys under the current key.
		var err error
		converted, err = tx.(*ops).convertLegacySecrets(ctx, current)
		if err != nil {
			return err
		}

		q := tx.(*ops).q
		rows, err := q.QueryContext(ctx,
			`SELECT path, version, master_key_id, wrapped_key, seal_format FROM secrets WHERE master_key_id <> $1`, current.ID())
		if err != nil {
			return fmt.Errorf("store: list secrets to rewrap: %w", err)
		}
		var list []version
		for rows.Next() {
			var v version
			if err := rows.Scan(&v.path, &v.version, &v.keyID, &v.wrapped, &v.format); err != nil {
				rows.Close()
				return fmt.Errorf("store: list secrets to rewrap: %w", err)
			}
			list = append(list, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}

		for _, v := range list {
			old := s.keys[v.keyID]
			if old == nil {
				return fmt.Errorf("%w: secret %s version %d is wrapped by master key %s, which is not configured; add it as an old master key",
					ErrDecrypt, v.path, v.version, v.keyID)
			}
			// A legacy row left beside versioned rows keeps its format,
			// so GetSecret still rejects it.
			if v.format != sealFormatLegacy && v.format != sealFormatVersioned {
				return fmt.Errorf("%w: secret %s version %d has seal format %d, which this release does not support; delete it with cloister secret rm %s and store it again",
					ErrDecrypt, v.path, v.version, v.format, v.path)
			}
			dataKey, err := gcmOpen(old.key, v.wrapped, keyAD(v.format, old.id, v.path, v.version))
			if err != nil {
				return fmt.Errorf("%w: unwrap data key of %s version %d with %s: %v", ErrDecrypt, v.path, v.version, old, err)
			}
			wrapped, err := gcmSeal(current.key, dataKey, keyAD(v.format, current.id, v.path, v.version))
			clear(dataKey)
			if err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx,
				`UPDATE secrets SET wrapped_key = $1, master_key_id = $2 WHERE path = $3 AND version = $4`,
				wrapped, current.ID(), v.path, v.version); err != nil {
				return fmt.Errorf("store: rewrap secret %s version %d: %w", v.path, v.version, err)
			}
			count++
		}
		if count == 0 {
			return nil
		}

		_, err = tx.AppendAudit(ctx, AuditRecord{Action: AuditAdmin, Requester: "master-key-rotation", Verdict: "applied",
			Reason: fmt.Sprintf("rewrapped %d secret data keys under master key %s", count, current.ID())})
		return err
	})
	if err != nil {
		return 0, err
	}
	return converted + count, nil
}
