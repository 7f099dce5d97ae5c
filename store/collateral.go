package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxCollateralSize is the largest collateral item Put accepts, in bytes.
// CRLs of large CAs are the biggest items and stay well below it.
const MaxCollateralSize = 16 << 20

// collateralCache implements CollateralCache on the store's database.
type collateralCache struct{ s *sqlStore }

func (c collateralCache) Get(ctx context.Context, key string) (*CollateralItem, error) {
	var (
		item                  = CollateralItem{Key: key}
		fetchedAt, nextUpdate int64
	)
	err := c.s.db.QueryRowContext(ctx,
		`SELECT data, content_type, fetched_at, next_update FROM collateral WHERE key = $1`, key).
		Scan(&item.Data, &item.ContentType, &fetchedAt, &nextUpdate)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("collateral %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read collateral %s: %w", key, err)
	}
	item.FetchedAt, item.NextUpdate = fromMicros(fetchedAt), fromMicros(nextUpdate)
	return &item, nil
}

func (c collateralCache) Put(ctx context.Context, item CollateralItem) error {
	if item.Key == "" || len(item.Key) > 1024 {
		return fmt.Errorf("%w: collateral key must be 1 to 1024 bytes, got %d", ErrInvalid, len(item.Key))
	}
	if len(item.Data) > MaxCollateralSize {
		return fmt.Errorf("%w: collateral %s is %d bytes, more than the maximum %d", ErrInvalid, item.Key, len(item.Data), MaxCollateralSize)
	}
	if item.Data == nil {
		item.Data = []byte{}
	}
	if item.FetchedAt.IsZero() {
		item.FetchedAt = c.s.cfg.now()
	}
	_, err := c.s.db.ExecContext(ctx,
		`INSERT INTO collateral (key, data, content_type, fetched_at, next_update) VALUES ($1, $2, $3, $4, $5)
		 ON CONFLICT (key) DO UPDATE SET data = excluded.data, content_type = excluded.content_type,
		   fetched_at = excluded.fetched_at, next_update = excluded.next_update`,
		item.Key, item.Data, item.ContentType, micros(item.FetchedAt), micros(item.NextUpdate))
	if err != nil {
		return fmt.Errorf("store: put collateral %s: %w", item.Key, err)
	}
	return nil
}

func (c collateralCache) List(ctx context.Context, prefix string) ([]CollateralItem, error) {
	rows, err := c.s.db.QueryContext(ctx,
		`SELECT key, content_type, fetched_at, next_update FROM collateral
		 WHERE substr(key, 1, $2) = $1 ORDER BY key`, prefix, utf8.RuneCountInString(prefix))
	if err != nil {
		return nil, fmt.Errorf("store: list collateral: %w", err)
	}
	defer rows.Close()

	var list []CollateralItem
	for rows.Next() {
		var (
			item                  CollateralItem
			fetchedAt, nextUpdate int64
		)
		if err := rows.Scan(&item.Key, &item.ContentType, &fetchedAt, &nextUpdate); err != nil {
			return nil, fmt.Errorf("store: list collateral: %w", err)
		}
		item.FetchedAt, item.NextUpdate = fromMicros(fetchedAt), fromMicros(nextUpdate)
		list = append(list, item)
	}
	return list, rows.Err()
}
