package store

import (
	"context"
	"sync"
	"testing"
)

func TestMigrationsIdempotentAndConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		const replicas = 4
		var wg sync.WaitGroup
		errs := make([]error, replicas)
		stores := make([]Store, replicas)
		for i := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stores[i], errs[i] = Open(context.Background(), b.config())
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d: Open: %v", i, err)
			}
			defer stores[i].Close()
		}

		// Opening again applies nothing and keeps the data.
		s := open(t, b.config())
		if _, err := s.AppendAudit(context.Background(), AuditRecord{Action: AuditAdmin}); err != nil {
			t.Fatal(err)
		}
		again := open(t, b.config())
		list, err := again.ListAudit(context.Background(), AuditQuery{})
		if err != nil || len(list) != 1 {
			t.Errorf("after reopening: %d audit records, err %v; want 1", len(list), err)
		}

		want, err := loadMigrations(s.d.name)
		if err != nil {
			t.Fatal(err)
		}
		var applied int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if applied != len(want) {
			t.Errorf("schema_migrations has %d rows, want %d (one per migration)", applied, len(want))
		}
	})
}

func TestMigrationsRejectNewerSchema(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := open(t, b.config())
		if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (9999, '9999_future.sql', 0)`); err != nil {
			t.Fatal(err)
		}
		for _, skip := range []bool{false, true} {
			cfg := b.config()
			cfg.SkipMigrations = skip
			if s, err := Open(context.Background(), cfg); err == nil {
				s.Close()
				t.Errorf("Open (SkipMigrations %v) of a database migrated by a newer version succeeded", skip)
			}
		}
	})
}

func TestSkipMigrationsNeedsSchema(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		cfg := b.config()
		cfg.SkipMigrations = true
		if s, err := Open(context.Background(), cfg); err == nil {
			s.Close()
			t.Error("Open with SkipMigrations of an empty database succeeded")
		}

		open(t, b.config())
		s, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatalf("Open with SkipMigrations of a migrated database: %v", err)
		}
		s.Close()
	})
}
