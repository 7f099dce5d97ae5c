package store

import (
	"context"
	"errors"
)

// Open connects to the database that cfg selects, applies pending schema
// migrations and starts group commit.
func Open(ctx context.Context, cfg Config) (Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return nil, errors.New("store: not implemented yet")
}
