package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/store/storetest"
)

func TestPostgresConnectTimeout(t *testing.T) {
	const base = "postgres://cloister:hunter2-password@db.example:5432/cloister"
	cases := []struct {
		name string
		url  string
		env  string // PGCONNECT_TIMEOUT
		want time.Duration
	}{
		{"default", base, "", defaultConnectTimeout},
		{"URL value", base + "?connect_timeout=3", "", 3 * time.Second},
		{"URL disables the limit", base + "?sslmode=disable&connect_timeout=0", "", 0},
		{"URL value over environment", base + "?connect_timeout=4", "7", 4 * time.Second},
		{"environment value", base, "7", 7 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PGCONNECT_TIMEOUT", tc.env)
			config, err := postgresConfig(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if config.ConnectTimeout != tc.want {
				t.Errorf("ConnectTimeout = %v, want %v", config.ConnectTimeout, tc.want)
			}
		})
	}
}

func TestPostgresConfigErrorHidesPassword(t *testing.T) {
	urls := []string{
		"postgres://cloister:hunter2-password@db.example/cloister?connect_timeout=soon",
		"postgres://cloister@db.example/cloister?password=hunter2-password&connect_timeout=soon",
		"postgres://cloister@db.example/cloister?sslpassword=hunter2-password&connect_timeout=soon",
	}
	for _, u := range urls {
		_, err := postgresConfig(u)
		if err == nil {
			t.Fatalf("postgresConfig accepted connect_timeout=soon")
		}
		if !strings.Contains(err.Error(), "connect_timeout") {
			t.Errorf("error %q does not name connect_timeout", err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q contains the password", err)
		}
	}
}

// Open fails at once, and names the fix, when nothing listens on the
// database URL's port.
func TestPostgresConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()

	start := time.Now()
	_, err = Open(context.Background(), Config{DatabaseURL: "postgres://cloister@127.0.0.1:" + port + "/cloister?sslmode=disable"})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Open succeeded without a server")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:"+port) {
		t.Errorf("error %q does not name the address", err)
	}
	if !strings.Contains(err.Error(), "check that PostgreSQL is running") {
		t.Errorf("error %q does not name the fix", err)
	}
	// A refused connection usually fails within milliseconds, so the bound
	// leaves room for a loaded machine.
	if elapsed > 5*time.Second {
		t.Errorf("Open took %v to report a refused connection", elapsed)
	}
}

// When PostgreSQL returns an error of its own, such as for a database
// that does not exist, Open reports that error with the hint for it, and
// neither the unreachable-server hint nor, with sslmode=prefer, the TLS
// hint, which would name the wrong fix.
func TestPostgresServerErrorHint(t *testing.T) {
	base := storetest.PostgresURL(t, "cloister_store_test")
	if base == "" {
		t.Skip(storetest.PostgresEnv + " is not set")
	}
	tests := []struct {
		name     string
		user     string
		database string
		sslmode  string
		want     []string
	}{
		{"missing database", "", "cloister_no_such_database", "disable", []string{"does not exist", "CREATE DATABASE"}},
		{"missing database with sslmode=prefer", "", "cloister_no_such_database", "prefer", []string{"does not exist", "CREATE DATABASE"}},
		{"missing role", "cloister_no_such_role", "", "disable", []string{"cloister_no_such_role", "CREATE ROLE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			if tt.database != "" {
				u.Path = "/" + tt.database
			}
			if tt.user != "" {
				u.User = url.User(tt.user)
			}
			q := u.Query()
			q.Set("sslmode", tt.sslmode)
			u.RawQuery = q.Encode()

			_, err = Open(context.Background(), Config{DatabaseURL: u.String()})
			if err == nil {
				t.Fatal("Open succeeded, want the server's error")
			}
			for _, part := range tt.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
			for _, wrong := range []string{"check that PostgreSQL is running", "does not accept TLS"} {
				if strings.Contains(err.Error(), wrong) {
					t.Errorf("error %q contains the hint %q, which names the wrong fix", err, wrong)
				}
			}
		})
	}
}

// A server that accepts the TCP connection and never responds makes Open
// fail after connect_timeout, through the pgx configuration that
// openPostgres builds.
func TestPostgresConnectTimeoutSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	start := time.Now()
	_, err = Open(context.Background(), Config{DatabaseURL: "postgres://cloister@" + ln.Addr().String() + "/cloister?connect_timeout=1"})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Open succeeded against a server that never responds")
	}
	if !strings.Contains(err.Error(), "connect_timeout") {
		t.Errorf("error %q does not name connect_timeout as the fix", err)
	}
	// connect_timeout=1 ends the attempt after one second. The bound leaves
	// room for a loaded machine and is still far below the minutes that a
	// TCP connection without a timeout can wait.
	if elapsed > 20*time.Second {
		t.Errorf("Open took %v with connect_timeout=1", elapsed)
	}
}

// A server that responds "N" (no TLS) to the TLS request makes Open with
// sslmode=require name TLS as the problem, not an unreachable server.
func TestPostgresServerWithoutTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// The SSLRequest message is 8 bytes: length and request code.
			request := make([]byte, 8)
			if _, err := io.ReadFull(conn, request); err == nil {
				conn.Write([]byte("N"))
			}
			conn.Close()
		}
	}()

	_, err = Open(context.Background(), Config{DatabaseURL: "postgres://cloister@" + ln.Addr().String() + "/cloister?sslmode=require"})
	if err == nil {
		t.Fatal("Open succeeded against a server without TLS")
	}
	if !strings.Contains(err.Error(), "does not accept TLS") {
		t.Errorf("error %q does not say that the server does not accept TLS", err)
	}
	if strings.Contains(err.Error(), "check that PostgreSQL is running") {
		t.Errorf("error %q adds the unreachable-server hint", err)
	}
}

// A role that may connect but not create the service's tables, as in a
// database that another role owns on PostgreSQL 15, gets a migration error
// that names the fix: the owner, or the privileges on the schema.
func TestPostgresMigrationPrivilegeHint(t *testing.T) {
	tests := []struct {
		name  string
		grant string
		want  []string
	}{
		{"schema without CREATE", "USAGE", []string{"42501", "OWNER TO", "createdb --owner"}},
		{"schema without USAGE", "", []string{"3F000", "search_path", "USAGE and CREATE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := storetest.PostgresURL(t, "cloister_store_test")
			if base == "" {
				t.Skip(storetest.PostgresEnv + " is not set")
			}
			u, err := url.Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("pgx", base)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })

			suffix := make([]byte, 6)
			rand.Read(suffix)
			role := "cloister_test_nocreate_" + hex.EncodeToString(suffix)
			// The password lets the role log in where the server requires one.
			password := hex.EncodeToString(suffix)
			if _, err := db.Exec(`CREATE ROLE ` + role + ` LOGIN PASSWORD '` + password + `'`); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := db.Exec(`DROP OWNED BY ` + role + `; DROP ROLE ` + role); err != nil {
					t.Logf("drop role %s: %v", role, err)
				}
			})
			if tt.grant != "" {
				if _, err := db.Exec(`GRANT ` + tt.grant + ` ON SCHEMA ` + u.Query().Get("search_path") + ` TO ` + role); err != nil {
					t.Fatal(err)
				}
			}

			u.User = url.UserPassword(role, password)
			_, err = Open(context.Background(), Config{DatabaseURL: u.String()})
			if err == nil {
				t.Fatal("Open succeeded for a role that may not create tables")
			}
			for _, part := range tt.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}
