package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"
)

// testBackend opens stores of one kind on one fresh database.
type testBackend struct {
	name string
	// config returns a Config for this backend's database; every Store
	// opened from it shares that database, like replicas do.
	config func() Config
}

// backends returns SQLite in a temporary directory and, when
// CLOISTER_TEST_POSTGRES_URL is set, PostgreSQL in a fresh schema that is
// dropped when the test ends. Without the variable the PostgreSQL case is
// skipped, unless CI is set, where it fails.
func backends(t testing.TB) []testBackend {
	t.Helper()
	dir := t.TempDir()
	list := []testBackend{{name: "sqlite", config: func() Config { return Config{DataDir: dir} }}}

	base := os.Getenv("CLOISTER_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CLOISTER_TEST_POSTGRES_URL is not set under CI; run scripts/test, which starts PostgreSQL")
		}
		t.Log("CLOISTER_TEST_POSTGRES_URL is not set; skipping the PostgreSQL store (scripts/test starts one)")
		return list
	}
	dbURL := freshSchema(t, base)
	return append(list, testBackend{name: "postgres", config: func() Config { return Config{DatabaseURL: dbURL} }})
}

// freshSchema creates a schema with a random name and returns base with
// search_path set to it, so that parallel test runs do not collide.
func freshSchema(t testing.TB, base string) string {
	t.Helper()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", base, err)
	}
	defer db.Close()

	suffix := make([]byte, 6)
	rand.Read(suffix)
	schema := "cloister_test_" + hex.EncodeToString(suffix)
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		if _, err := db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// forEachBackend runs fn as a subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b testBackend)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// open opens a Store for cfg and closes it when the test ends.
func open(t testing.TB, cfg Config) *sqlStore {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*sqlStore)
}

func testMasterKey(t testing.TB) *MasterKey {
	t.Helper()
	raw := make([]byte, MasterKeySize)
	rand.Read(raw)
	k, err := NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
