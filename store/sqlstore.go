package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// querier is the query interface that *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqlStore implements Store on database/sql for both dialects.
type sqlStore struct {
	db    *sql.DB
	d     dialect
	cfg   Config
	keys  map[string]*MasterKey // by ID: the current key and old keys
	group *groupCommitter
	// stmts caches prepared statements on SQLite; nil on PostgreSQL.
	stmts *stmtCache
}

// ops runs the operations of Ops on one querier: the database for a single
// read, or an open transaction.
type ops struct {
	s *sqlStore
	q querier
	// inTx is set on the ops of a transaction.
	inTx bool
	// head is the audit chain head after this transaction's appends, nil
	// before the first. Tx writes it to audit_head before it commits.
	head *auditHead
}

var _ Store = (*sqlStore)(nil)

func (s *sqlStore) Dialect() string { return s.d.name }

func (s *sqlStore) Collateral() CollateralCache { return collateralCache{s: s} }

func (s *sqlStore) Close() error {
	s.group.stop()
	if s.stmts != nil {
		s.stmts.close()
	}
	return s.db.Close()
}

func (s *sqlStore) Tx(ctx context.Context, fn func(tx Tx) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin transaction: %w", err)
	}
	if s.stmts != nil {
		// Deferred first so that it runs last, after the commit or
		// rollback has returned the connection to the pool.
		defer s.stmts.preparePending(ctx)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
		if err != nil {
			tx.Rollback()
		}
	}()

	o := &ops{s: s, q: s.querier(tx), inTx: true}
	if err := fn(o); err != nil {
		return err
	}
	if o.head != nil {
		if err := o.writeAuditHead(ctx, *o.head); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// autocommit returns ops that run each statement in its own implicit
// transaction, for operations that are a single statement.
func (s *sqlStore) autocommit() *ops { return &ops{s: s, q: s.querier(nil)} }

// querier returns the querier of tx, or of the database when tx is nil,
// through the statement cache when the store has one.
func (s *sqlStore) querier(tx *sql.Tx) querier {
	switch {
	case s.stmts != nil:
		return cachedQuerier{cache: s.stmts, tx: tx}
	case tx != nil:
		return tx
	}
	return s.db
}

// retryConflict runs fn in a transaction and retries it a few times when it
// fails with ErrConflict. Two replicas that add a version of the same
// secret or policy at once compute the same next version number, and the
// loser's INSERT fails on the primary key. The retry reads the new maximum.
func (s *sqlStore) retryConflict(ctx context.Context, fn func(tx Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.Tx(ctx, fn)
		if !errors.Is(err, ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return err
}

func (s *sqlStore) PutSecret(ctx context.Context, path string, value []byte) (info SecretInfo, err error) {
	err = s.retryConflict(ctx, func(tx Tx) error {
		info, err = tx.PutSecret(ctx, path, value)
		return err
	})
	return info, err
}

func (s *sqlStore) GetSecret(ctx context.Context, path string) (*Secret, error) {
	return s.autocommit().GetSecret(ctx, path)
}

func (s *sqlStore) ListSecrets(ctx context.Context, prefix string) ([]SecretInfo, error) {
	return s.autocommit().ListSecrets(ctx, prefix)
}

func (s *sqlStore) UnopenableSecrets(ctx context.Context) ([]SecretInfo, int, error) {
	list, err := s.ListSecrets(ctx, "")
	if err != nil {
		return nil, 0, err
	}
	var unopenable []SecretInfo
	for _, info := range list {
		if s.keys[info.MasterKeyID] == nil {
			unopenable = append(unopenable, info)
		}
	}
	return unopenable, len(list), nil
}

func (s *sqlStore) DeleteSecret(ctx context.Context, path string) error {
	return s.autocommit().DeleteSecret(ctx, path)
}

func (s *sqlStore) PutPolicy(ctx context.Context, kind PolicyKind, name, module string) (p Policy, err error) {
	err = s.retryConflict(ctx, func(tx Tx) error {
		p, err = tx.PutPolicy(ctx, kind, name, module)
		return err
	})
	return p, err
}

func (s *sqlStore) GetPolicy(ctx context.Context, kind PolicyKind, name string) (*Policy, error) {
	return s.autocommit().GetPolicy(ctx, kind, name)
}

func (s *sqlStore) ListPolicies(ctx context.Context, kind PolicyKind) ([]Policy, error) {
	return s.autocommit().ListPolicies(ctx, kind)
}

func (s *sqlStore) DeletePolicy(ctx context.Context, kind PolicyKind, name string) error {
	return s.autocommit().DeletePolicy(ctx, kind, name)
}

func (s *sqlStore) AddReferenceValue(ctx context.Context, rv ReferenceValue) (ReferenceValue, error) {
	return s.autocommit().AddReferenceValue(ctx, rv)
}

func (s *sqlStore) ListReferenceValues(ctx context.Context, name string) ([]ReferenceValue, error) {
	return s.autocommit().ListReferenceValues(ctx, name)
}

func (s *sqlStore) ActiveReferenceValues(ctx context.Context, at time.Time) (map[string][]string, error) {
	return s.autocommit().ActiveReferenceValues(ctx, at)
}

func (s *sqlStore) RemoveReferenceValue(ctx context.Context, name, value string) error {
	return s.autocommit().RemoveReferenceValue(ctx, name, value)
}

func (s *sqlStore) CreateSession(ctx context.Context, sess Session) error {
	return s.Tx(ctx, func(tx Tx) error { return tx.CreateSession(ctx, sess) })
}

func (s *sqlStore) GetSession(ctx context.Context, id string) (*Session, error) {
	return s.autocommit().GetSession(ctx, id)
}

func (s *sqlStore) MarkAttested(ctx context.Context, id string, a Attestation) error {
	return s.autocommit().MarkAttested(ctx, id, a)
}

func (s *sqlStore) ExpireSessions(ctx context.Context, now time.Time) (n int64, err error) {
	err = s.Tx(ctx, func(tx Tx) error {
		n, err = tx.ExpireSessions(ctx, now)
		return err
	})
	return n, err
}

func (s *sqlStore) IssueNonce(ctx context.Context, n Nonce) error {
	return s.autocommit().IssueNonce(ctx, n)
}

func (s *sqlStore) ConsumeNonce(ctx context.Context, nonce string, now time.Time) (*Nonce, error) {
	return s.autocommit().ConsumeNonce(ctx, nonce, now)
}

func (s *sqlStore) AppendAudit(ctx context.Context, rec AuditRecord) (out AuditRecord, err error) {
	err = s.Tx(ctx, func(tx Tx) error {
		out, err = tx.AppendAudit(ctx, rec)
		return err
	})
	return out, err
}

func (s *sqlStore) ListAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	return s.autocommit().ListAudit(ctx, q)
}
