package collateral

import (
	"context"
	"errors"
)

// Sources combines several sources, typically an offline bundle followed by
// an online fetcher. Every source is asked; the sets are merged in order.
// A failing source does not hide the others' items, but its error is
// returned with them so that the verifier can report it.
type Sources []Source

// Collateral merges the answers of every source.
func (s Sources) Collateral(ctx context.Context, q Query) (*Set, error) {
	out := &Set{}
	var errs []error
	for _, src := range s {
		if src == nil {
			continue
		}
		set, err := src.Collateral(ctx, q)
		out.Merge(set)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}
