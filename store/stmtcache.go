package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStatements bounds the prepared statements a store keeps. The
// store's own queries are constant strings, far fewer than this. Queries
// past the bound run unprepared.
const maxCachedStatements = 256

// stmtCache keeps one prepared statement per query text. modernc.org/sqlite
// parses and plans a query on every database/sql call that is not a
// prepared statement, which took about 4% of the CPU time of a KBS round
// trip. database/sql prepares a cached *sql.Stmt once on each connection
// that runs it. PostgreSQL stores do not use the cache because pgx
// already caches prepared statements per connection.
//
// A transaction never prepares on the pool. It uses the statements
// prepared earlier, runs the others unprepared, and leaves them in pending
// for preparePending, which prepares them after the transaction has ended.
// Preparing needs a second connection, and every transaction that waits
// for SQLite's write lock holds a pooled connection in SQLite's busy
// handler. With as many waiters as the pool has connections, the
// transaction holding the lock would wait for a connection until a waiter
// failed with SQLITE_BUSY after the busy timeout.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// get returns the prepared statement for query, preparing it on first use,
// or nil when the cache is full or preparing failed. The caller then runs
// the query unprepared, which reports any error of the query itself.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.stmts[query]
	full := len(c.stmts) >= maxCachedStatements
	c.mu.Unlock()
	if ok || full {
		return st
	}

	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.stmts[query]; ok {
		st.Close()
		return prev
	}
	c.stmts[query] = st
	return st
}

// lookup returns the prepared statement for query without preparing it, or
// nil. A miss leaves query in pending while the cache has room.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.stmts[query]
	if !ok && len(c.stmts)+len(c.pending) < maxCachedStatements {
		c.pending[query] = true
	}
	return st
}

// preparePending prepares the queries that lookup missed. The caller must
// not hold a connection of c.db, because preparing needs one.
func (c *stmtCache) preparePending(ctx context.Context) {
	c.mu.Lock()
	queries := make([]string, 0, len(c.pending))
	for q := range c.pending {
		queries = append(queries, q)
	}
	clear(c.pending)
	c.mu.Unlock()

	for _, q := range queries {
		c.get(ctx, q)
	}
}

// close closes every cached statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
}

// cachedQuerier runs queries through the cache, on the database when tx is
// nil, else inside tx.
type cachedQuerier struct {
	cache *stmtCache
	tx    *sql.Tx
}

// base returns the querier for statements the cache does not hold.
func (q cachedQuerier) base() querier {
	if q.tx != nil {
		return q.tx
	}
	return q.cache.db
}

// stmt returns the prepared statement for query, bound to the transaction
// when there is one, or nil.
func (q cachedQuerier) stmt(ctx context.Context, query string) *sql.Stmt {
	if q.tx == nil {
		return q.cache.get(ctx, query)
	}
	st := q.cache.lookup(query)
	if st == nil {
		return nil
	}
	return q.tx.StmtContext(ctx, st)
}

func (q cachedQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.base().ExecContext(ctx, query, args...)
}

func (q cachedQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.base().QueryContext(ctx, query, args...)
}

func (q cachedQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.base().QueryRowContext(ctx, query, args...)
}
