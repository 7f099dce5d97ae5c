package store

import (
	"context"
	"fmt"
	"time"
)

// MaxReferenceValueSize is the longest reference value accepted, in bytes.
const MaxReferenceValueSize = 4096

func (o *ops) AddReferenceValue(ctx context.Context, rv ReferenceValue) (ReferenceValue, error) {
	if !policyName.MatchString(rv.Name) {
		return ReferenceValue{}, fmt.Errorf("%w: reference value name %q must start with a letter or digit and contain at most 128 letters, digits, '.', '_' or '-'", ErrInvalid, rv.Name)
	}
	if rv.Value == "" || len(rv.Value) > MaxReferenceValueSize {
		return ReferenceValue{}, fmt.Errorf("%w: reference value %s: value must be 1 to %d bytes, got %d", ErrInvalid, rv.Name, MaxReferenceValueSize, len(rv.Value))
	}
	rv.Added = fromMicros(micros(o.s.cfg.now()))
	rv.Expires = fromMicros(micros(rv.Expires))

	_, err := o.q.ExecContext(ctx,
		`INSERT INTO reference_values (name, value, expires, added) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (name, value) DO UPDATE SET expires = excluded.expires, added = excluded.added`,
		rv.Name, rv.Value, micros(rv.Expires), micros(rv.Added))
	if err != nil {
		return ReferenceValue{}, fmt.Errorf("store: add reference value %s: %w", rv.Name, err)
	}
	return rv, nil
}

func (o *ops) ListReferenceValues(ctx context.Context, name string) ([]ReferenceValue, error) {
	rows, err := o.q.QueryContext(ctx,
		`SELECT name, value, expires, added FROM reference_values
		 WHERE ($1 = '' OR name = $1) ORDER BY name, value`, name)
	if err != nil {
		return nil, fmt.Errorf("store: list reference values: %w", err)
	}
	defer rows.Close()

	var list []ReferenceValue
	for rows.Next() {
		var (
			rv             ReferenceValue
			expires, added int64
		)
		if err := rows.Scan(&rv.Name, &rv.Value, &expires, &added); err != nil {
			return nil, fmt.Errorf("store: list reference values: %w", err)
		}
		rv.Expires, rv.Added = fromMicros(expires), fromMicros(added)
		list = append(list, rv)
	}
	return list, rows.Err()
}

func (o *ops) ActiveReferenceValues(ctx context.Context, at time.Time) (map[string][]string, error) {
	rows, err := o.q.QueryContext(ctx,
		`SELECT name, value, expires FROM reference_values ORDER BY name, value`)
	if err != nil {
		return nil, fmt.Errorf("store: read reference values: %w", err)
	}
	defer rows.Close()

	active := map[string][]string{}
	for rows.Next() {
		var (
			name, value string
			expires     int64
		)
		if err := rows.Scan(&name, &value, &expires); err != nil {
			return nil, fmt.Errorf("store: read reference values: %w", err)
		}
		addActive(active, name, value, expires, at)
	}
	return active, rows.Err()
}

// ActiveAt returns, for each name, the values in list that have not
// expired at time at, in list's order. It applies the rule of
// ActiveReferenceValues to rows read with ListReferenceValues, so that a
// cache can keep the rows and filter them per request.
func ActiveAt(list []ReferenceValue, at time.Time) map[string][]string {
	active := map[string][]string{}
	for _, rv := range list {
		addActive(active, rv.Name, rv.Value, micros(rv.Expires), at)
	}
	return active
}

// addActive adds value to active[name] unless it expired at time at. A
// name is added with an empty list even when all its values expired, so
// that a policy can reject a claim whose pinned values ran out rather than
// stop checking it.
func addActive(active map[string][]string, name, value string, expires int64, at time.Time) {
	values, ok := active[name]
	if !ok {
		values = []string{}
	}
	if expires == 0 || expires > micros(at) {
		values = append(values, value)
	}
	active[name] = values
}

func (o *ops) RemoveReferenceValue(ctx context.Context, name, value string) error {
	res, err := o.q.ExecContext(ctx,
		`DELETE FROM reference_values WHERE name = $1 AND ($2 = '' OR value = $2)`, name, value)
	if err != nil {
		return fmt.Errorf("store: remove reference value %s: %w", name, err)
	}
	if value == "" {
		return requireRows(res, "reference value "+name)
	}
	return requireRows(res, fmt.Sprintf("reference value %s = %q", name, value))
}
