package cleanroom

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// loadCSV reads a CSV file with a header that names t's columns in order
// and inserts its rows into t in one transaction. Errors name the line
// and the column but never a value, because the values are the party's
// private data and errors reach the logs.
func loadCSV(ctx context.Context, db *sql.DB, t Table, body io.Reader, maxBytes int64) (int64, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(body); err != nil {
		return 0, fmt.Errorf("reading the upload of table %s: %w", t.Name, err)
	}
	// The upload buffer is zeroed on return. NOTE: strings made from it
	// (csv records, SQLite bindings) stay in the Go heap until the
	// collector reuses their memory, because Go strings cannot be zeroed.
	defer clear(buf.Bytes())
	if int64(buf.Len()) > maxBytes {
		return 0, fmt.Errorf("%w: the upload of table %s exceeds the limit of %d bytes", ErrInvalidInput, t.Name, maxBytes)
	}

	r := csv.NewReader(bytes.NewReader(buf.Bytes()))
	r.FieldsPerRecord = len(t.Columns)
	r.ReuseRecord = true
	if err := checkHeader(r, t); err != nil {
		return 0, err
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	n, err := insertRows(ctx, tx, r, t)
	if err != nil {
		tx.Rollback()
		return 0, err
	}
	if n == 0 {
		tx.Rollback()
		return 0, fmt.Errorf("%w: the upload of table %s has a header but no rows", ErrInvalidInput, t.Name)
	}
	return n, tx.Commit()
}

func checkHeader(r *csv.Reader, t Table) error {
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("%w: reading the CSV header of table %s: %s", ErrInvalidInput, t.Name, csvReason(err, t))
	}
	want := columnNames(t)
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	// The error names only the expected column, because an upload that
	// lacks its header line has a row of private data in this place.
	for i := range want {
		if header[i] != want[i] {
			return fmt.Errorf("%w: column %d of the CSV header of table %s is not %q; start the upload with the header line %q that the manifest defines",
				ErrInvalidInput, i+1, t.Name, want[i], strings.Join(want, ","))
		}
	}
	return nil
}

func insertRows(ctx context.Context, tx *sql.Tx, r *csv.Reader, t Table) (int64, error) {
	marks := strings.TrimSuffix(strings.Repeat("?,", len(t.Columns)), ",")
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %q VALUES (%s)", t.Name, marks))
	if err != nil {
		return 0, err
	}
	defer stmt.Close()

	args := make([]any, len(t.Columns))
	var n int64
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("%w: table %s: %s", ErrInvalidInput, t.Name, csvReason(err, t))
		}
		line, _ := r.FieldPos(0)
		for i, c := range t.Columns {
			v, err := convert(rec[i], c.Type)
			if err != nil {
				return n, fmt.Errorf("%w: table %s, line %d, column %s: %v", ErrInvalidInput, t.Name, line, c.Name, err)
			}
			args[i] = v
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return n, fmt.Errorf("table %s, line %d: inserting the row failed: %w", t.Name, line, err)
		}
		n++
	}
}

// decimalNumber is the syntax of a REAL field: an optional sign, digits
// with an optional decimal point, and an optional exponent.
var decimalNumber = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// convert parses a CSV field as the column type. An empty INTEGER or REAL
// field is NULL; an empty TEXT field is the empty string.
func convert(field, typ string) (any, error) {
	switch typ {
	case "TEXT":
		return field, nil
	case "INTEGER":
		if field == "" {
			return nil, nil
		}
		v, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return nil, errors.New("the value is not a 64-bit decimal integer")
		}
		return v, nil
	case "REAL":
		if field == "" {
			return nil, nil
		}
		// strconv.ParseFloat also accepts NaN, infinities and Go's
		// hexadecimal and underscore forms. SQLite stores NaN as NULL and
		// no result can carry an infinity, so the syntax is checked first.
		if !decimalNumber.MatchString(field) {
			return nil, errors.New("the value is not a decimal number such as -12.5 or 1e3 (not-a-number, infinite and hexadecimal values are rejected)")
		}
		v, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return nil, errors.New("the value is outside the range of a 64-bit floating-point number")
		}
		return v, nil
	}
	return nil, fmt.Errorf("unknown column type %q", typ)
}

// csvReason describes a csv parse error by its position and kind only,
// because csv.ParseError never includes the field, but other errors
// could.
func csvReason(err error, t Table) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			// Only the expected count is named: the line may hold private data.
			return fmt.Sprintf("line %d: wrong number of fields, expected %d (%s)", pe.Line, len(t.Columns), strings.Join(columnNames(t), ","))
		}
		return fmt.Sprintf("line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
	}
	if errors.Is(err, io.EOF) {
		return "the file is empty"
	}
	return err.Error()
}

// columnNames returns the column names of t in the order of its CSV
// header line.
func columnNames(t Table) []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}
