package cleanroom

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// query runs the manifest's query with PRAGMA query_only set, so that no
// statement can change the inputs, and applies the group-size threshold.
func (r *Room) query(ctx context.Context) (_ *Result, err error) {
	if _, err := r.db.ExecContext(ctx, "PRAGMA query_only = ON"); err != nil {
		return nil, err
	}
	// Registered before rows.Close, so it runs after it: the pool has
	// one connection, which the open rows hold.
	defer func() {
		if _, perr := r.db.ExecContext(ctx, "PRAGMA query_only = OFF"); perr != nil && err == nil {
			err = perr
		}
	}()
	rows, err := r.db.QueryContext(ctx, r.manifest.Query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	sizeCol, err := groupSizeColumn(cols, r.manifest.GroupSizeColumn)
	if err != nil {
		return nil, err
	}

	res := &Result{Manifest: r.digest, Columns: cols, MinGroupSize: r.manifest.MinGroupSize, Rows: [][]any{}}
	for rows.Next() {
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		size, err := groupSize(row[sizeCol])
		if err != nil {
			return nil, fmt.Errorf("result row %d, column %s: %w", len(res.Rows)+res.Suppressed+1, cols[sizeCol], err)
		}
		if size < r.manifest.MinGroupSize {
			res.Suppressed++
			continue
		}
		if err := checkFinite(row, cols); err != nil {
			return nil, fmt.Errorf("result row %d, %w", len(res.Rows)+res.Suppressed+1, err)
		}
		res.Rows = append(res.Rows, row)
	}
	return res, rows.Err()
}

// groupSizeColumn returns the index of the result column called name.
// SQLite compares column names without case, so a match in another case
// counts, and a name that two columns share is rejected, because the
// parties could not tell which one the threshold applies to.
func groupSizeColumn(cols []string, name string) (int, error) {
	index, count := -1, 0
	for i, c := range cols {
		if strings.EqualFold(c, name) {
			if index < 0 {
				index = i
			}
			count++
		}
	}
	if count == 0 {
		return 0, fmt.Errorf("the result has no column %q (group_size_column); its columns are %s",
			name, strings.Join(cols, ", "))
	}
	if count > 1 {
		return 0, fmt.Errorf("the result has %d columns named %q (group_size_column, compared without case), so the threshold could apply to any of them; give the other columns other names in the query",
			count, name)
	}
	return index, nil
}

// checkFinite rejects a row with an infinite or NaN value, such as a SUM
// of REAL values that overflowed, because JSON cannot carry it and the
// result could not be sent to anyone.
func checkFinite(row []any, cols []string) error {
	for i, v := range row {
		if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return fmt.Errorf("column %s: the value is infinite or not a number, which JSON cannot carry; change the agreed query to round or cap it", cols[i])
		}
	}
	return nil
}

// groupSize reads a group-size value. Anything but an integer fails the
// query, because a threshold that cannot be applied must not release the
// row. The error names only the value's type, because the column may hold
// private data of a group below the threshold and the error reaches the
// recipients and the log.
func groupSize(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case float64:
		return floatGroupSize(n)
	}
	return 0, fmt.Errorf("the group size is a %s, expected an integer count; make group_size_column a COUNT", sqlTypeName(v))
}

// floatGroupSize converts a REAL group size whose value is an integer. The
// range is checked first, because Go leaves the conversion of a float
// outside the range of int64 to the platform.
func floatGroupSize(n float64) (int64, error) {
	const fix = "expected an integer count; make group_size_column a COUNT"
	switch {
	case math.IsNaN(n):
		return 0, fmt.Errorf("the group size is not a number, %s", fix)
	case math.IsInf(n, 0):
		return 0, fmt.Errorf("the group size is infinite, %s", fix)
	case n != math.Trunc(n):
		return 0, fmt.Errorf("the group size is a fractional number, %s", fix)
	case n < math.MinInt64 || n >= -math.MinInt64:
		return 0, fmt.Errorf("the group size is outside the range of a 64-bit integer, %s", fix)
	}
	return int64(n), nil
}

// sqlTypeName names the SQLite storage class of a scanned value.
func sqlTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "NULL"
	case string:
		return "TEXT"
	case []byte:
		return "BLOB"
	}
	return fmt.Sprintf("%T", v)
}
