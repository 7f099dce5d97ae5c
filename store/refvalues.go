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
		`SELECT name, value FROM reference_values WHERE expires = 0 OR expires > $1 ORDER BY name, value`, micros(at))
	if err != nil {
		return nil, fmt.Errorf("store: read reference values: %w", err)
	}
	defer rows.Close()

	active := map[string][]string{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("store: read reference values: %w", err)
		}
		active[name] = append(active[name], value)
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
		expires := micros(rv.Expires)
		if expires == 0 || expires > micros(at) {
			active[rv.Name] = append(active[rv.Name], rv.Value)
		}
	}
	return active
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
