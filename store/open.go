package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLiteFile is the name of the SQLite database inside the data directory.
const SQLiteFile = "cloister.db"

// sqliteBusyTimeout is how long a connection waits for SQLite's single
// writer lock before failing with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// pingRetryInterval is the pause between attempts to connect while another
// connection holds the lock that switching to WAL needs.
const pingRetryInterval = 20 * time.Millisecond

// ping opens the first connection. SQLite returns SQLITE_BUSY at once,
// without calling the busy handler, when waiting could deadlock (see the
// documentation of sqlite3_busy_handler). That happens when several
// connections open a new database and switch it to WAL mode at the same
// moment. Such a ping is retried until the busy timeout has passed.
func ping(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	for {
		err := db.PingContext(ctx)
		if !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pingRetryInterval):
		}
	}
}

// openDatabase opens the database that cfg names, PostgreSQL for a
// DatabaseURL and else SQLite in DataDir, without running migrations.
// create lets SQLite create a missing database file.
func openDatabase(cfg Config, create bool) (*sql.DB, dialect, error) {
	if cfg.DatabaseURL != "" {
		db, err := openPostgres(cfg.DatabaseURL)
		return db, postgresDialect, err
	}
	db, err := openSQLite(cfg.DataDir, create)
	return db, sqliteDialect, err
}

// Open connects to the database that cfg selects, applies pending schema
// migrations (or, with SkipMigrations, only checks that this binary can
// read the schema) and starts group commit. The caller must Close the Store.
// Each PostgreSQL connection attempt gives up after the connect_timeout
// of the database URL, else of PGCONNECT_TIMEOUT, else after 10 seconds.
func Open(ctx context.Context, cfg Config) (Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}

	db, d, err := openDatabase(cfg, !cfg.SkipMigrations)
	if err != nil {
		return nil, err
	}
	if d == sqliteDialect {
		warnSharedDatabase(cfg.logger(), filepath.Join(cfg.DataDir, SQLiteFile))
	}
	if err := ping(ctx, db); err != nil {
		db.Close()
		if d == postgresDialect {
			return nil, fmt.Errorf("store: connect to %s database: %w%s", d.name, err, postgresConnectHint(err))
		}
		return nil, fmt.Errorf("store: connect to %s database: %w", d.name, err)
	}

	if cfg.SkipMigrations {
		if err := checkSchema(ctx, db, d); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: %w", err)
		}
	} else {
		applied, err := migrate(ctx, db, d, cfg.now().UnixMicro())
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: %w%s", err, serverErrorHint(err))
		}
		for _, name := range applied {
			cfg.logger().Info("applied schema migration", "dialect", d.name, "migration", name)
		}
	}

	s := &sqlStore{db: db, d: d, cfg: cfg, keys: map[string]*MasterKey{}}
	for _, k := range cfg.OldMasterKeys {
		s.keys[k.ID()] = k
	}
	if cfg.MasterKey != nil {
		s.keys[cfg.MasterKey.ID()] = cfg.MasterKey
	}
	if d == sqliteDialect {
		s.stmts = newStmtCache(db)
	}
	s.group = newGroupCommitter(s, cfg.GroupCommit)
	if cfg.MasterKey != nil && !cfg.SkipMigrations {
		s.convertLegacySecretsOnOpen(ctx)
	}
	return s, nil
}

// serverErrorFixes maps the SQLSTATE of a PostgreSQL server error that
// Open can meet, while it connects or migrates the schema, to its fix.
var serverErrorFixes = map[string]string{
	// invalid_catalog_name
	"3D000": "create it once (CREATE DATABASE, or createdb), or correct the database name in the URL",
	// invalid_authorization_specification
	"28000": "create the role (CREATE ROLE ... LOGIN), or correct the user name in the URL",
	// invalid_password
	"28P01": "correct the password in the URL, in PGPASSWORD or in the password file",
	// insufficient_privilege: since PostgreSQL 15 only the database owner
	// may create tables in the public schema by default.
	"42501": "the role in the database URL may not create the service's tables, so make it the database's owner " +
		"(ALTER DATABASE name OWNER TO role, or createdb --owner role), or grant it CREATE on the schema",
	// invalid_schema_name
	"3F000": "no schema in the role's search_path exists or may be used, so create the schema, " +
		"or grant the role USAGE and CREATE on it",
}

// serverErrorHint returns the fix for an error that the PostgreSQL server
// returned, starting with "; ", or "" when serverErrorFixes has none.
func serverErrorHint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && serverErrorFixes[pgErr.Code] != "" {
		return "; " + serverErrorFixes[pgErr.Code]
	}
	return ""
}

// postgresConnectHint returns the fix for a failed PostgreSQL connection,
// starting with "; ", or "" when the error speaks for itself. An error that
// the server returned comes first, because with sslmode=prefer the error
// also reports the refused TLS attempt that came before it.
func postgresConnectHint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return serverErrorHint(err)
	}
	// pgconn reports a refused TLS request with an unexported error value.
	if strings.Contains(err.Error(), "server refused TLS connection") {
		return "; the server does not accept TLS, so enable ssl in its configuration, " +
			"or, only where the connection cannot leave the host (such as 127.0.0.1), set sslmode=disable in the URL"
	}
	return "; check that PostgreSQL is running and reachable at the host and port of the database URL, " +
		"or set a longer connect_timeout (in seconds) in the URL if the server is slow to accept connections"
}

func openSQLite(dir string, create bool) (*sql.DB, error) {
	file := filepath.Join(dir, SQLiteFile)
	if !create {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("store: no database at %s: %w", file, err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	if strings.ContainsAny(file, "?#") {
		return nil, fmt.Errorf("store: data directory %q contains '?' or '#', which the SQLite driver cannot open; choose another directory", dir)
	}
	if create {
		if err := createPrivate(file); err != nil {
			return nil, err
		}
	}

	// WAL lets readers run beside the one writer. synchronous=FULL syncs the
	// WAL on every commit, so a committed audit record survives a power
	// loss. _txlock=immediate takes the write lock at BEGIN, so that two
	// read-then-write transactions wait for each other instead of failing
	// with SQLITE_BUSY when they upgrade.
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+file+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open SQLite database %s: %w", file, err)
	}
	db.SetMaxOpenConns(8)
	// Idle connections stay open, with the statements prepared on them,
	// instead of being closed beyond database/sql's default of two.
	db.SetMaxIdleConns(8)
	return db, nil
}

// defaultConnectTimeout bounds each PostgreSQL connection attempt when
// neither the database URL nor PGCONNECT_TIMEOUT sets connect_timeout.
// Without it, pgx waits for an unreachable host until the operating system
// abandons the TCP handshake (about two minutes with Linux's default
// tcp_syn_retries), and for a server that accepts the connection but
// never responds, without end.
const defaultConnectTimeout = 10 * time.Second

// openPostgres opens a connection pool for databaseURL. Each new
// connection, including those that the pool opens later, must be
// established within connect_timeout. That is the URL's own value in
// seconds (0 means no limit), else the PGCONNECT_TIMEOUT environment
// variable, else defaultConnectTimeout.
func openPostgres(databaseURL string) (*sql.DB, error) {
	config, err := postgresConfig(databaseURL)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*config)
	db.SetMaxOpenConns(16)
	// Idle connections stay open up to the same limit. With database/sql's
	// default of two, concurrent requests closed and reopened connections
	// (TCP, authentication, a new server process and an empty statement
	// cache each time), about 4% of a KBS round trip's CPU time.
	db.SetMaxIdleConns(16)
	return db, nil
}

// postgresConfig parses databaseURL into a pgx configuration and applies
// defaultConnectTimeout when nothing sets connect_timeout.
func postgresConfig(databaseURL string) (*pgx.ConnConfig, error) {
	// The errors never contain a password of databaseURL. The errors here
	// do not quote the URL, and ParseConfigError of pgx v5.13.0 masks the
	// password of the user information and the password and sslpassword
	// query parameters.
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, errors.New("store: the database URL is not a valid URL; use postgres://user@host:port/database")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("store: database URL scheme %q is not postgres; use postgres://user@host:port/database", u.Scheme)
	}
	config, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: invalid PostgreSQL database URL: %w; check its query parameters against the libpq connection parameters", err)
	}
	_, inURL := u.Query()["connect_timeout"]
	if !inURL && os.Getenv("PGCONNECT_TIMEOUT") == "" {
		config.ConnectTimeout = defaultConnectTimeout
	}
	return config, nil
}

// createPrivate creates file, empty and with mode 0600, unless it exists.
// SQLite gives its WAL and shared-memory files the database file's mode, so
// all three stay private even in a data directory that others can read.
func createPrivate(file string) error {
	f, err := os.OpenFile(file, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: create database file %s: %w; check that the data directory is writable", file, err)
	}
	return f.Close()
}

// warnSharedDatabase logs a warning when the SQLite database file grants
// access to its group or others, as files created by earlier versions do.
// The mode is left as it is, because an operator may have set it on purpose.
func warnSharedDatabase(log *slog.Logger, file string) {
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	log.Warn("database file is readable or writable by group or others, although it contains the audit log and session tokens",
		"file", file, "mode", fi.Mode().Perm().String(), "fix", "chmod 600 "+file)
}
