package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// ConsumeNonce stores its time as the consumption time, and 0 means
// unused, so a time that stores as 0 or less would leave the nonce
// consumable again.
func TestConsumeNonceRejectsUnsetTime(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
	}{
		{name: "zero time", now: time.Time{}},
		{name: "Unix epoch", now: time.Unix(0, 0)},
		{name: "before 1970", now: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b testBackend) {
				ctx := context.Background()
				s := open(t, b.config())
				if err := s.IssueNonce(ctx, Nonce{Value: "n1", Expires: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.ConsumeNonce(ctx, "n1", tt.now); !errors.Is(err, ErrInvalid) {
					t.Errorf("ConsumeNonce at %v: err = %v, want ErrInvalid", tt.now, err)
				}
				if _, err := s.ConsumeNonce(ctx, "n1", time.Now()); err != nil {
					t.Errorf("ConsumeNonce after the rejected call: %v", err)
				}
				if _, err := s.ConsumeNonce(ctx, "n1", time.Now()); !errors.Is(err, ErrNonceUsed) {
					t.Errorf("second ConsumeNonce: err = %v, want ErrNonceUsed", err)
				}
			})
		})
	}
}

// Session IDs and nonces come from clients. One with a NUL byte or invalid
// UTF-8 cannot be stored in PostgreSQL TEXT, so both backends reject it
// when it is created and report it as not found when it is looked up,
// instead of returning a database error.
func TestSessionIDUnstorableText(t *testing.T) {
	tests := []struct {
		name  string
		value string
	}{
		{name: "NUL", value: "id\x00"},
		{name: "invalid UTF-8", value: "id\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b testBackend) {
				ctx := context.Background()
				s := open(t, b.config())
				now := time.Now()
				valid := Session{ID: "session-1", Nonce: "nonce-1", TEE: "snp", Created: now, Expires: now.Add(time.Hour)}

				withID := valid
				withID.ID = tt.value
				if err := s.CreateSession(ctx, withID); !errors.Is(err, ErrInvalid) {
					t.Errorf("CreateSession with ID %q: err = %v, want ErrInvalid", tt.value, err)
				}
				withNonce := valid
				withNonce.Nonce = tt.value
				if err := s.CreateSession(ctx, withNonce); !errors.Is(err, ErrInvalid) {
					t.Errorf("CreateSession with nonce %q: err = %v, want ErrInvalid", tt.value, err)
				}
				if err := s.IssueNonce(ctx, Nonce{Value: tt.value, Expires: now.Add(time.Hour)}); !errors.Is(err, ErrInvalid) {
					t.Errorf("IssueNonce %q: err = %v, want ErrInvalid", tt.value, err)
				}

				if _, err := s.GetSession(ctx, tt.value); !errors.Is(err, ErrNotFound) {
					t.Errorf("GetSession %q: err = %v, want ErrNotFound", tt.value, err)
				}
				if err := s.MarkAttested(ctx, tt.value, Attestation{Token: "t"}); !errors.Is(err, ErrNotFound) {
					t.Errorf("MarkAttested %q: err = %v, want ErrNotFound", tt.value, err)
				}
				if _, err := s.ConsumeNonce(ctx, tt.value, now); !errors.Is(err, ErrNotFound) {
					t.Errorf("ConsumeNonce %q: err = %v, want ErrNotFound", tt.value, err)
				}
			})
		})
	}
}
