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
