// Package storetest provides throwaway databases for tests of the store and
// of packages built on it.
package storetest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// PostgresEnv names the environment variable with the URL of the test
// PostgreSQL database. scripts/test starts one and sets it.
const PostgresEnv = "CLOISTER_TEST_POSTGRES_URL"

// PostgresURL creates a schema with a random name in the test PostgreSQL
// database, drops it when the test ends, and returns the database URL with
// search_path set to that schema, so that parallel test runs do not
// collide. It returns "" when PostgresEnv is unset, and the caller should
// then skip its PostgreSQL case. Under CI (CI set) an unset PostgresEnv
// fails the test instead, so that CI cannot pass without PostgreSQL.
func PostgresURL(t testing.TB, prefix string) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set under CI; run scripts/test, which starts PostgreSQL", PostgresEnv)
		}
		t.Logf("%s is not set; skipping PostgreSQL (scripts/test starts one)", PostgresEnv)
		return ""
	}

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: invalid URL: %v", PostgresEnv, err)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", u.Redacted(), err)
	}
	defer db.Close()

	suffix := make([]byte, 6)
	rand.Read(suffix)
	schema := prefix + "_" + hex.EncodeToString(suffix)
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema %s in %s: %v", schema, u.Redacted(), err)
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

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
