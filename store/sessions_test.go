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

func TestNonceConcurrentConsumers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		// Two Stores on one database stand for two replicas.
		replicas := []*sqlStore{open(t, b.config()), open(t, b.config())}
		now := time.Now().UTC()

		for round := 0; round < 5; round++ {
			nonce := fmt.Sprintf("race-%d", round)
			if err := replicas[0].IssueNonce(ctx, Nonce{Value: nonce, Expires: now.Add(time.Minute)}); err != nil {
				t.Fatalf("IssueNonce: %v", err)
			}

			const consumers = 8
			var wg sync.WaitGroup
			errs := make([]error, consumers)
			for i := range consumers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = replicas[i%2].ConsumeNonce(ctx, nonce, now)
				}()
			}
			wg.Wait()

			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, ErrNonceUsed):
					t.Errorf("round %d: loser's error = %v, want ErrNonceUsed", round, err)
				}
			}
			if wins != 1 {
				t.Errorf("round %d: %d consumers won, want exactly 1", round, wins)
			}
		}
	})
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

		// The attest request: consume the session's nonce, mark it attested
		// and audit it, in one transaction.
		err = s.Tx(ctx, func(tx Tx) error {
			n, err := tx.ConsumeNonce(ctx, "nonce-s1", clock.Now())
			if err != nil {
				return err
			}
			if n.SessionID != "s1" {
				t.Errorf("nonce session ID = %q, want s1", n.SessionID)
			}
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
		if _, err := s.ConsumeNonce(ctx, "nonce-s2", clock.Now()); !errors.Is(err, ErrExpired) {
			t.Errorf("ConsumeNonce of expired session: err = %v, want ErrExpired", err)
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
