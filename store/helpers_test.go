package store

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/store/storetest"
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
// dropped when the test ends (see storetest.PostgresURL).
func backends(t testing.TB) []testBackend {
	t.Helper()
	dir := t.TempDir()
	list := []testBackend{{name: "sqlite", config: func() Config { return Config{DataDir: dir} }}}
	if dbURL := storetest.PostgresURL(t, "cloister_store_test"); dbURL != "" {
		list = append(list, testBackend{name: "postgres", config: func() Config { return Config{DatabaseURL: dbURL} }})
	}
	return list
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

// openWithKey opens the store of b with a new master key.
func openWithKey(t testing.TB, b testBackend) *sqlStore {
	t.Helper()
	cfg := b.config()
	cfg.MasterKey = testMasterKey(t)
	return open(t, cfg)
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
