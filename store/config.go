package store

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config selects and configures a Store. The zero value is not usable: set
// DataDir or DatabaseURL, and MasterKey.
type Config struct {
	// DataDir is the directory of the embedded SQLite database
	// (DataDir/cloister.db). It is used when DatabaseURL is empty.
	DataDir string

	// DatabaseURL selects PostgreSQL, as a postgres:// or postgresql://
	// connection URL for pgx.
	DatabaseURL string

	// MasterKey wraps the data keys of new secret versions. OldMasterKeys
	// only unwrap data keys written under earlier master keys, so that a
	// master key can rotate without rewriting every secret at once.
	MasterKey     *MasterKey
	OldMasterKeys []*MasterKey

	// SkipMigrations opens an existing database as it is: no schema change
	// is applied, and a missing SQLite database is an error instead of
	// being created. Offline readers such as `cloister audit verify` set it.
	SkipMigrations bool

	// GroupCommit tunes AppendAuditGrouped.
	GroupCommit GroupCommitConfig

	// Logger receives applied migrations and group-commit errors; nil
	// means slog.Default().
	Logger *slog.Logger

	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// GroupCommitConfig tunes group commit of audit appends. The zero value
// batches up to 256 records and waits for no stragglers: a batch is whatever
// queued while the previous batch was committing.
type GroupCommitConfig struct {
	// MaxBatch is the maximum number of records per transaction; 0 means
	// 256, and values above 2048 are lowered to 2048.
	MaxBatch int
	// Disabled makes AppendAuditGrouped run one transaction per record.
	Disabled bool
}

// DefaultDataDir returns $XDG_DATA_HOME/cloister, or
// ~/.local/share/cloister when XDG_DATA_HOME is unset.
func DefaultDataDir() (string, error) {
	if dir := os.Getenv("XDG_DATA_HOME"); dir != "" {
		return filepath.Join(dir, "cloister"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("data directory: %w; set --data-dir or XDG_DATA_HOME", err)
	}
	return filepath.Join(home, ".local", "share", "cloister"), nil
}

func (c *Config) validate() error {
	if c.DataDir == "" && c.DatabaseURL == "" {
		return errors.New("store: no database configured; set a data directory or a postgres:// database URL")
	}
	return nil
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Location describes the database that c selects, for a log line: the
// SQLite file, or PostgreSQL's host, port and database name. It never
// contains a user name or password.
func (c Config) Location() string {
	if c.DatabaseURL == "" {
		return filepath.Join(c.DataDir, SQLiteFile)
	}
	pc, err := pgconn.ParseConfig(c.DatabaseURL)
	if err != nil {
		return "an unparsable PostgreSQL URL"
	}
	return fmt.Sprintf("postgres://%s/%s", net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port))), pc.Database)
}
