package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestStmtCacheFullFallsBack(t *testing.T) {
	s := open(t, Config{DataDir: t.TempDir()})
	if s.stmts == nil {
		t.Fatal("SQLite store has no statement cache")
	}
	ctx := context.Background()
	q := s.querier(nil)
	for i := 0; i < maxCachedStatements+10; i++ {
		var got int
		if err := q.QueryRowContext(ctx, fmt.Sprintf("SELECT %d + ?", i), 1).Scan(&got); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if got != i+1 {
			t.Fatalf("query %d returned %d, want %d", i, got, i+1)
		}
	}
	if n := len(s.stmts.stmts); n != maxCachedStatements {
		t.Errorf("cache holds %d statements, want %d", n, maxCachedStatements)
	}
}

func TestStmtCacheInTransaction(t *testing.T) {
	s := open(t, Config{DataDir: t.TempDir()})
	ctx := context.Background()
	query := "SELECT ? * 2"
	for i := 0; i < 3; i++ {
		err := s.Tx(ctx, func(tx Tx) error {
			var got int
			if err := tx.(*ops).q.QueryRowContext(ctx, query, i).Scan(&got); err != nil {
				return err
			}
			if got != 2*i {
				return fmt.Errorf("got %d, want %d", got, 2*i)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	if _, ok := s.stmts.stmts[query]; !ok {
		t.Error("the transaction's query was not cached")
	}
}

// A transaction runs an uncached query without preparing it, because
// preparing would need a second connection. The query is prepared once the
// transaction has ended.
func TestStmtCachePreparesAfterTransaction(t *testing.T) {
	s := open(t, Config{DataDir: t.TempDir()})
	ctx := context.Background()
	query := "SELECT ? + 40"
	err := s.Tx(ctx, func(tx Tx) error {
		var got int
		if err := tx.(*ops).q.QueryRowContext(ctx, query, 2).Scan(&got); err != nil {
			return err
		}
		if got != 42 {
			return fmt.Errorf("got %d, want 42", got)
		}
		if _, ok := s.stmts.stmts[query]; ok {
			return errors.New("the query was prepared inside the transaction")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.stmts.stmts[query]; !ok {
		t.Error("the query was not prepared after the transaction")
	}
	if n := len(s.stmts.pending); n != 0 {
		t.Errorf("%d queries are still pending", n)
	}
}

func TestStmtCacheInvalidQuery(t *testing.T) {
	s := open(t, Config{DataDir: t.TempDir()})
	if _, err := s.querier(nil).ExecContext(context.Background(), "SELEKT 1"); err == nil {
		t.Fatal("invalid SQL ran without an error")
	}
	if len(s.stmts.stmts) != 0 {
		t.Error("an invalid query was cached")
	}
}
