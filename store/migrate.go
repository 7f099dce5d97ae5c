package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFS holds one directory of numbered SQL files per dialect. A file
// NNNN_name.sql is applied once, in number order, and recorded in
// schema_migrations.
//
//go:embed migrations
var migrationFS embed.FS

// migrationLockID is the PostgreSQL advisory lock key that serializes
// migrations when several replicas start at once. The value is arbitrary
// but fixed: the first 8 bytes of SHA-256("cloister schema migrations")
// with the top bit cleared.
const migrationLockID int64 = 0x35f504a6c751504b

type migration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations returns the migrations of dialect in version order.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}

	var list []migration
	for _, e := range entries {
		number, _, ok := strings.Cut(e.Name(), "_")
		if !ok || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		version, err := strconv.ParseInt(number, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migration file %s: invalid version %q", e.Name(), number)
		}
		text, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		list = append(list, migration{version: version, name: e.Name(), sql: string(text)})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].version < list[j].version })
	return list, nil
}

// migrate applies pending migrations in one transaction. On PostgreSQL a
// transaction-scoped advisory lock makes a second replica wait and then
// find nothing to do. On SQLite the immediate transaction takes the write
// lock up front, which has the same effect.
func migrate(ctx context.Context, db *sql.DB, d dialect, now int64) (applied []string, err error) {
	return migrateUpTo(ctx, db, d, now, math.MaxInt64)
}

// migrateUpTo applies pending migrations as migrate does, but none with a
// version above last. Tests use it to build a database as an older
// release left it.
func migrateUpTo(ctx context.Context, db *sql.DB, d dialect, now, last int64) (applied []string, err error) {
	list, err := loadMigrations(d.name)
	if err != nil {
		return nil, err
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()

	if d.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockID); err != nil {
			return nil, fmt.Errorf("lock migrations: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT NOT NULL PRIMARY KEY,
		name    TEXT   NOT NULL,
		applied BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}

	done, err := appliedVersions(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := checkNotNewer(done, list); err != nil {
		return nil, err
	}

	for _, m := range list {
		if m.version > last {
			break
		}
		if done[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, $3)`,
			m.version, m.name, now); err != nil {
			return nil, fmt.Errorf("record migration %s: %w", m.name, err)
		}
		applied = append(applied, m.name)
	}

	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit migrations: %w", err)
	}
	return applied, nil
}

// appliedVersions returns the versions recorded in schema_migrations.
func appliedVersions(ctx context.Context, q querier) (map[int64]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()

	done := map[int64]bool{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		done[v] = true
	}
	return done, rows.Err()
}

// checkNotNewer rejects a database that a newer Cloister has migrated past
// the migrations embedded in this binary, because this binary's queries may
// not match that schema.
func checkNotNewer(done map[int64]bool, list []migration) error {
	var known int64
	if len(list) > 0 {
		known = list[len(list)-1].version
	}
	for v := range done {
		if v > known {
			return fmt.Errorf("database schema is at migration %d, newer than this binary's latest migration %d; run a Cloister version at least as new as the one that migrated it", v, known)
		}
	}
	return nil
}

// checkSchema verifies, without changing anything, that the database holds
// a Cloister schema this binary can read: the first migration, which
// creates the audit log, and none newer than the embedded ones. Later
// migrations may be missing, because the one command that skips
// migrations, cloister audit verify, reads only the audit log. It serves
// Config.SkipMigrations.
func checkSchema(ctx context.Context, db *sql.DB, d dialect) error {
	list, err := loadMigrations(d.name)
	if err != nil {
		return err
	}
	done, err := appliedVersions(ctx, db)
	if err != nil {
		return fmt.Errorf("no Cloister schema found (%w); check the data directory or the database URL and its search_path", err)
	}
	if err := checkNotNewer(done, list); err != nil {
		return err
	}
	if len(list) > 0 && !done[list[0].version] {
		return fmt.Errorf("database lacks migration %s; start cloister serve once against it to migrate it", list[0].name)
	}
	return nil
}
