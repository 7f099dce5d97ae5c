// Package storecache keeps the collateral cache in the service's database,
// so that every replica of `cloister serve` shares one copy of the vendor
// collateral and AMD KDS and Intel PCS are asked once, not once per replica.
package storecache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/store"
)

// contentType marks a stored item as a JSON-encoded collateral.Entry.
const contentType = "application/vnd.cloister.collateral-entry+json"

// Backend adapts a store.CollateralCache to collateral.Backend.
type Backend struct {
	Cache store.CollateralCache
}

// Get returns the entry for key, or nil when the store has none.
func (b Backend) Get(ctx context.Context, key string) (*collateral.Entry, error) {
	item, err := b.Cache.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decode(item)
}

// Put stores e under its key.
func (b Backend) Put(ctx context.Context, e *collateral.Entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return b.Cache.Put(ctx, store.CollateralItem{Key: e.Key, Data: data, ContentType: contentType,
		FetchedAt: e.FetchedAt, NextUpdate: e.NextUpdate})
}

// List returns every collateral entry in the store.
func (b Backend) List(ctx context.Context) ([]*collateral.Entry, error) {
	items, err := b.Cache.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []*collateral.Entry
	for _, it := range items {
		if it.ContentType != contentType {
			continue
		}
		e, err := b.Get(ctx, it.Key)
		if err != nil {
			return nil, err
		}
		if e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

func decode(item *store.CollateralItem) (*collateral.Entry, error) {
	if item.ContentType != contentType {
		return nil, fmt.Errorf("collateral item %s has content type %q, expected %q", item.Key, item.ContentType, contentType)
	}
	var e collateral.Entry
	if err := json.Unmarshal(item.Data, &e); err != nil {
		return nil, fmt.Errorf("corrupt collateral item %s: %w", item.Key, err)
	}
	if e.Key != item.Key {
		return nil, fmt.Errorf("collateral item %s contains the entry for key %q", item.Key, e.Key)
	}
	return &e, nil
}
