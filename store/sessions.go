package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// maxIDSize bounds session IDs and nonces, which come from clients.
const maxIDSize = 256

// SessionRef returns "session:" and the first 8 bytes of the SHA-256 of
// id in hexadecimal, which names a session in errors and logs. The ID
// itself is the client's bearer credential, so it never appears there.
func SessionRef(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "session:" + hex.EncodeToString(sum[:8])
}

func validateToken(kind, v string) error {
	if v == "" || len(v) > maxIDSize {
		return fmt.Errorf("%w: %s must be 1 to %d bytes, got %d", ErrInvalid, kind, maxIDSize, len(v))
	}
	if !storable(v) {
		return fmt.Errorf("%w: %s contains a NUL byte or invalid UTF-8, which the database cannot store; generate it as printable text such as base64url", ErrInvalid, kind)
	}
	return nil
}

// storable reports whether PostgreSQL TEXT can store s. A session ID or
// nonce that it cannot store was never created, so a lookup of it returns
// ErrNotFound without a query, and both backends return the same error.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

func (o *ops) CreateSession(ctx context.Context, s Session) error {
	if err := validateToken("session ID", s.ID); err != nil {
		return err
	}
	if err := validateToken("session nonce", s.Nonce); err != nil {
		return err
	}
	if !s.Expires.After(s.Created) {
		return fmt.Errorf("%w: %s expires at %s, not after its creation at %s", ErrInvalid, SessionRef(s.ID), s.Expires, s.Created)
	}

	_, err := o.q.ExecContext(ctx,
		`INSERT INTO sessions (id, nonce, tee, created, expires, state) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.ID, s.Nonce, s.TEE, micros(s.Created), micros(s.Expires), string(SessionChallenged))
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: %s or its nonce exists", ErrConflict, SessionRef(s.ID))
	}
	if err != nil {
		return fmt.Errorf("store: create %s: %w", SessionRef(s.ID), err)
	}
	return nil
}

func (o *ops) GetSession(ctx context.Context, id string) (*Session, error) {
	var (
		s                            Session
		state                        string
		created, expires, attestedAt int64
		teePublicKey                 []byte
	)
	if !storable(id) {
		return nil, fmt.Errorf("%s: %w", SessionRef(id), ErrNotFound)
	}
	err := o.q.QueryRowContext(ctx,
		`SELECT id, nonce, tee, created, expires, state, token, tee_public_key, claims_digest, attested_at
		 FROM sessions WHERE id = $1`, id).
		Scan(&s.ID, &s.Nonce, &s.TEE, &created, &expires, &state, &s.Token, &teePublicKey, &s.ClaimsDigest, &attestedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", SessionRef(id), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", SessionRef(id), err)
	}
	s.State = SessionState(state)
	s.Created, s.Expires, s.AttestedAt = fromMicros(created), fromMicros(expires), fromMicros(attestedAt)
	s.TEEPublicKey = teePublicKey

	if now := o.s.cfg.now(); !now.Before(s.Expires) {
		return &s, fmt.Errorf("%s expired at %s: %w; start a new session", SessionRef(id), s.Expires.Format(time.RFC3339), ErrExpired)
	}
	return &s, nil
}

func (o *ops) MarkAttested(ctx context.Context, id string, a Attestation) error {
	if !storable(id) {
		return fmt.Errorf("%s: %w", SessionRef(id), ErrNotFound)
	}
	if a.AttestedAt.IsZero() {
		a.AttestedAt = o.s.cfg.now()
	}
	res, err := o.q.ExecContext(ctx,
		`UPDATE sessions SET state = $1, token = $2, tee_public_key = $3, claims_digest = $4, attested_at = $5
		 WHERE id = $6 AND state = $7 AND expires > $8`,
		string(SessionAttested), a.Token, a.TEEPublicKey, a.ClaimsDigest, micros(a.AttestedAt),
		id, string(SessionChallenged), micros(o.s.cfg.now()))
	if err != nil {
		return fmt.Errorf("store: mark %s attested: %w", SessionRef(id), err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}

	// The conditional UPDATE matched nothing; find out why.
	s, err := o.GetSession(ctx, id)
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s is %s, not %s", ErrConflict, SessionRef(id), s.State, SessionChallenged)
}

func (o *ops) ExpireSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := o.q.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= $1`, micros(now))
	if err != nil {
		return 0, fmt.Errorf("store: expire sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: expire sessions: %w", err)
	}
	if _, err := o.q.ExecContext(ctx, `DELETE FROM nonces WHERE expires <= $1`, micros(now)); err != nil {
		return 0, fmt.Errorf("store: expire nonces: %w", err)
	}
	return n, nil
}

func (o *ops) IssueNonce(ctx context.Context, n Nonce) error {
	if err := validateToken("nonce", n.Value); err != nil {
		return err
	}
	if n.Expires.IsZero() {
		return fmt.Errorf("%w: nonce has no expiry", ErrInvalid)
	}
	_, err := o.q.ExecContext(ctx,
		`INSERT INTO nonces (value, session_id, expires) VALUES ($1, $2, $3)`,
		n.Value, n.SessionID, micros(n.Expires))
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: nonce was issued before", ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: issue nonce: %w", err)
	}
	return nil
}

func (o *ops) ConsumeNonce(ctx context.Context, nonce string, now time.Time) (*Nonce, error) {
	// The store records consumption as that time in Unix microseconds, with
	// 0 for an unused nonce, so a time at or before the epoch is rejected.
	if micros(now) <= 0 {
		return nil, fmt.Errorf("%w: nonce consumption time %s is not after 1970-01-01, and the store records it in Unix microseconds with 0 for unused; pass the current time",
			ErrInvalid, now.Format(time.RFC3339Nano))
	}
	if !storable(nonce) {
		return nil, fmt.Errorf("nonce was never issued: %w", ErrNotFound)
	}

	// One conditional UPDATE decides: of several concurrent consumers, on
	// any replica, only the one whose UPDATE matches used = 0 gets a row
	// back. PostgreSQL re-checks the condition after the row lock of a
	// concurrent winner is released; SQLite has a single writer.
	var (
		n             = Nonce{Value: nonce}
		expires, used int64
	)
	err := o.q.QueryRowContext(ctx,
		`UPDATE nonces SET used = $1 WHERE value = $2 AND used = 0 AND expires > $1
		 RETURNING session_id, expires, used`, micros(now), nonce).
		Scan(&n.SessionID, &expires, &used)
	if err == nil {
		n.Expires, n.Used = fromMicros(expires), fromMicros(used)
		return &n, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: consume nonce: %w", err)
	}

	err = o.q.QueryRowContext(ctx, `SELECT expires, used FROM nonces WHERE value = $1`, nonce).Scan(&expires, &used)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("nonce was never issued or has been purged: %w", ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("store: consume nonce: %w", err)
	case used != 0:
		return nil, fmt.Errorf("%w: nonce was consumed at %s; request a new challenge", ErrNonceUsed, fromMicros(used).Format(time.RFC3339Nano))
	default:
		return nil, fmt.Errorf("nonce expired at %s: %w; request a new challenge", fromMicros(expires).Format(time.RFC3339), ErrExpired)
	}
}
