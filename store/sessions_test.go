package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNonceConsumedOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		now := time.Now().UTC()

		if err := s.IssueNonce(ctx, Nonce{Value: "n1", Expires: now.Add(time.Minute)}); err != nil {
			t.Fatalf("IssueNonce: %v", err)
		}
		if err := s.IssueNonce(ctx, Nonce{Value: "n1", Expires: now.Add(time.Minute)}); !errors.Is(err, ErrConflict) {
			t.Errorf("IssueNonce twice: err = %v, want ErrConflict", err)
		}

		n, err := s.ConsumeNonce(ctx, "n1", now)
		if err != nil {
			t.Fatalf("first ConsumeNonce: %v", err)
		}
		if n.Used.IsZero() {
			t.Error("consumed nonce has no Used time")
		}
		if _, err := s.ConsumeNonce(ctx, "n1", now); !errors.Is(err, ErrNonceUsed) {
			t.Errorf("second ConsumeNonce: err = %v, want ErrNonceUsed", err)
		}
		if _, err := s.ConsumeNonce(ctx, "never-issued", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("ConsumeNonce of unknown nonce: err = %v, want ErrNotFound", err)
		}

		if err := s.IssueNonce(ctx, Nonce{Value: "n2", Expires: now.Add(time.Second)}); err != nil {
			t.Fatalf("IssueNonce: %v", err)
		}
		if _, err := s.ConsumeNonce(ctx, "n2", now.Add(2*time.Second)); !errors.Is(err, ErrExpired) {
			t.Errorf("ConsumeNonce after expiry: err = %v, want ErrExpired", err)
		}
	})
}

// A nonce and a session's attestation are each used once, however many
// requests race for them on however many replicas.
func TestSingleUseUnderConcurrency(t *testing.T) {
	tests := []struct {
		name string
		// issue creates the single-use value named round on replica.
		issue func(ctx context.Context, replica *sqlStore, round string, now time.Time) error
		// use tries to consume it.
		use     func(ctx context.Context, replica *sqlStore, round string, now time.Time) error
		loseErr error
	}{
		{
			name: "nonce",
			issue: func(ctx context.Context, r *sqlStore, round string, now time.Time) error {
				return r.IssueNonce(ctx, Nonce{Value: round, Expires: now.Add(time.Minute)})
			},
			use: func(ctx context.Context, r *sqlStore, round string, now time.Time) error {
				_, err := r.ConsumeNonce(ctx, round, now)
				return err
			},
			loseErr: ErrNonceUsed,
		},
		{
			name: "session attestation",
			issue: func(ctx context.Context, r *sqlStore, round string, now time.Time) error {
				return r.CreateSession(ctx, Session{ID: round, Nonce: "nonce-" + round, TEE: "snp", Created: now, Expires: now.Add(time.Minute)})
			},
			use: func(ctx context.Context, r *sqlStore, round string, now time.Time) error {
				return r.MarkAttested(ctx, round, Attestation{Token: "token-" + round})
			},
			loseErr: ErrConflict,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b testBackend) {
				ctx := context.Background()
				// Two Stores on one database stand for two replicas.
				replicas := []*sqlStore{open(t, b.config()), open(t, b.config())}
				now := time.Now().UTC()

				for i := 0; i < 5; i++ {
					round := fmt.Sprintf("race-%d", i)
					if err := tt.issue(ctx, replicas[0], round, now); err != nil {
						t.Fatalf("issue %s: %v", round, err)
					}

					const users = 8
					var wg sync.WaitGroup
					errs := make([]error, users)
					for u := range users {
						wg.Add(1)
						go func() {
							defer wg.Done()
							errs[u] = tt.use(ctx, replicas[u%2], round, now)
						}()
					}
					wg.Wait()

					wins := 0
					for _, err := range errs {
						switch {
						case err == nil:
							wins++
						case !errors.Is(err, tt.loseErr):
							t.Errorf("%s: loser's error = %v, want %v", round, err, tt.loseErr)
						}
					}
					if wins != 1 {
						t.Errorf("%s: %d requests won, want exactly 1", round, wins)
					}
				}
			})
		})
	}
}

// openWithClock opens a Store on b with a clock that does not move until
// the test advances it.
func openWithClock(t *testing.T, b testBackend) (*sqlStore, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := b.config()
	cfg.Now = clock.Now
	return open(t, cfg), clock
}

func TestSessionLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s, clock := openWithClock(t, b)

		sess := Session{ID: "s1", Nonce: "nonce-s1", TEE: "snp", Created: clock.Now(), Expires: clock.Now().Add(5 * time.Minute)}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		if err := s.CreateSession(ctx, sess); !errors.Is(err, ErrConflict) {
			t.Errorf("CreateSession twice: err = %v, want ErrConflict", err)
		}

		got, err := s.GetSession(ctx, "s1")
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if got.State != SessionChallenged || got.Nonce != "nonce-s1" || got.TEE != "snp" || !got.Expires.Equal(sess.Expires) {
			t.Errorf("GetSession = %+v", got)
		}

		// The attest request: mark the session attested, which uses up its
		// nonce, and audit it, in one transaction.
		err = s.Tx(ctx, func(tx Tx) error {
			if err := tx.MarkAttested(ctx, "s1", Attestation{Token: "ear-token", TEEPublicKey: []byte(`{"kty":"EC"}`), ClaimsDigest: "abcd"}); err != nil {
				return err
			}
			_, err = tx.AppendAudit(ctx, AuditRecord{Action: AuditAttest, TEE: "snp", Verdict: "affirming"})
			return err
		})
		if err != nil {
			t.Fatalf("attest transaction: %v", err)
		}
		got, err = s.GetSession(ctx, "s1")
		if err != nil {
			t.Fatalf("GetSession after attest: %v", err)
		}
		if got.State != SessionAttested || got.Token != "ear-token" || string(got.TEEPublicKey) != `{"kty":"EC"}` || got.ClaimsDigest != "abcd" || got.AttestedAt.IsZero() {
			t.Errorf("attested session = %+v", got)
		}
		if err := s.MarkAttested(ctx, "s1", Attestation{Token: "again"}); !errors.Is(err, ErrConflict) {
			t.Errorf("MarkAttested twice: err = %v, want ErrConflict", err)
		}

		clock.Advance(5 * time.Minute)
		if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, ErrExpired) {
			t.Errorf("GetSession at expiry: err = %v, want ErrExpired", err)
		}
		n, err := s.ExpireSessions(ctx, clock.Now())
		if err != nil {
			t.Fatalf("ExpireSessions: %v", err)
		}
		if n != 1 {
			t.Errorf("ExpireSessions deleted %d sessions, want 1", n)
		}
		if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSession after ExpireSessions: err = %v, want ErrNotFound", err)
		}
	})
}

func TestMarkAttestedExpiredSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s, clock := openWithClock(t, b)

		sess := Session{ID: "s2", Nonce: "nonce-s2", TEE: "tdx", Created: clock.Now(), Expires: clock.Now().Add(time.Minute)}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		clock.Advance(2 * time.Minute)
		if err := s.MarkAttested(ctx, "s2", Attestation{Token: "t"}); !errors.Is(err, ErrExpired) {
			t.Errorf("MarkAttested after expiry: err = %v, want ErrExpired", err)
		}
	})
}

// TestSessionErrorsOmitID checks that session errors name the session by
// SessionRef, because the ID is the client's bearer credential and these
// errors reach the service log.
func TestSessionErrorsOmitID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		now := time.Now().UTC()
		const id = "secret-session-id-0123456789"

		_, err := s.GetSession(ctx, id)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetSession of an unknown session: err = %v, want ErrNotFound", err)
		}
		checkSessionError(t, "GetSession", err, id)

		err = s.CreateSession(ctx, Session{ID: id, Nonce: "n-omit", TEE: "snp", Created: now, Expires: now})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("CreateSession expiring at creation: err = %v, want ErrInvalid", err)
		}
		checkSessionError(t, "CreateSession", err, id)

		err = s.MarkAttested(ctx, id, Attestation{Token: "t"})
		if err == nil {
			t.Fatal("MarkAttested of an unknown session succeeded")
		}
		checkSessionError(t, "MarkAttested", err, id)
	})
}

func checkSessionError(t *testing.T, op string, err error, id string) {
	t.Helper()
	if strings.Contains(err.Error(), id) {
		t.Errorf("%s error %q contains the session ID", op, err)
	}
	if !strings.Contains(err.Error(), SessionRef(id)) {
		t.Errorf("%s error %q does not contain %s", op, err, SessionRef(id))
	}
}
