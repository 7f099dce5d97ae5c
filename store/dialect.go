package store

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds the few differences between SQLite and PostgreSQL. Both
// accept $N placeholders, RETURNING and the schema types used here, so the
// queries are shared.
type dialect struct {
	name     string
	postgres bool
	// lockHead is appended to the chain-head SELECT. PostgreSQL needs a row
	// lock; SQLite already holds its single write lock from BEGIN IMMEDIATE.
	lockHead string
}

var (
	sqliteDialect   = dialect{name: "sqlite"}
	postgresDialect = dialect{name: "postgres", postgres: true, lockHead: " FOR UPDATE"}
)

// isUniqueViolation reports whether err is a primary key or unique
// constraint violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		code := sqliteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isBusy reports whether err is SQLite's SQLITE_BUSY, in any of its
// extended forms.
func isBusy(err error) bool {
	var sqliteErr *sqlite.Error
	return errors.As(err, &sqliteErr) && sqliteErr.Code()&0xff == sqlite3.SQLITE_BUSY
}

// micros converts t to the stored form, Unix microseconds, with 0 for the
// zero time. Microseconds are PostgreSQL's timestamp resolution, and one
// unit in both stores keeps audit hashes identical across them.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// Stored returns t as the store keeps it: at microsecond precision, as
// reading it back gives it. Callers that keep a copy of what they stored
// compare times with the store's this way.
func Stored(t time.Time) time.Time { return fromMicros(micros(t)) }

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
