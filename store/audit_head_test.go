package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"
)

// AuditHead returns the last record of the chain, whichever way it was
// appended, and the zero head of an empty chain.
func TestAuditHeadFollowsAppends(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())

		head, err := s.AuditHead(ctx)
		if err != nil {
			t.Fatalf("AuditHead of an empty chain: %v", err)
		}
		if head.Seq != 0 {
			t.Errorf("AuditHead of an empty chain: seq %d, want 0", head.Seq)
		}
		if !bytes.Equal(head.Hash, make([]byte, sha256.Size)) {
			t.Errorf("AuditHead of an empty chain: hash %x, want 32 zero bytes", head.Hash)
		}

		appends := []struct {
			name   string
			append func() (AuditRecord, error)
		}{
			{"direct", func() (AuditRecord, error) {
				return s.AppendAudit(ctx, AuditRecord{Action: AuditAttest, Reason: "direct"})
			}},
			{"grouped", func() (AuditRecord, error) {
				return s.AppendAuditGrouped(ctx, AuditRecord{Action: AuditDeny, Reason: "grouped"})
			}},
			{"transaction", func() (AuditRecord, error) {
				var last AuditRecord
				err := s.Tx(ctx, func(tx Tx) error {
					for range 3 {
						rec, err := tx.AppendAudit(ctx, AuditRecord{Action: AuditRelease, Reason: "in a transaction"})
						if err != nil {
							return err
						}
						last = rec
					}
					return nil
				})
				return last, err
			}},
		}

		for _, a := range appends {
			rec, err := a.append()
			if err != nil {
				t.Fatalf("%s append: %v", a.name, err)
			}

			head, err := s.AuditHead(ctx)
			if err != nil {
				t.Fatalf("AuditHead after %s append: %v", a.name, err)
			}
			if head.Seq != rec.Seq {
				t.Errorf("AuditHead after %s append: seq %d, want %d", a.name, head.Seq, rec.Seq)
			}
			if !bytes.Equal(head.Hash, rec.Hash) {
				t.Errorf("AuditHead after %s append: hash %x, want %x", a.name, head.Hash, rec.Hash)
			}
		}

		head, err = s.AuditHead(ctx)
		if err != nil {
			t.Fatalf("AuditHead: %v", err)
		}
		v, err := s.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("VerifyAudit: %v", err)
		}
		if v.Records != head.Seq {
			t.Errorf("VerifyAudit checked %d records, AuditHead names record %d", v.Records, head.Seq)
		}
		if !bytes.Equal(v.Head, head.Hash) {
			t.Errorf("VerifyAudit head %x, AuditHead hash %x", v.Head, head.Hash)
		}
	})
}

// AuditHead must not wait for an append that holds the head row's lock, so
// that a service reading it periodically never stalls behind, or stalls,
// request handling. It returns the head as committed before that append.
func TestAuditHeadDoesNotWaitForAppend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		writer := open(t, b.config())
		reader := open(t, b.config())
		committed, err := writer.AppendAudit(ctx, AuditRecord{Action: AuditAttest, Reason: "committed"})
		if err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}

		appended := make(chan error, 1)
		release := make(chan struct{})
		txDone := make(chan error, 1)
		go func() {
			txDone <- writer.Tx(ctx, func(tx Tx) error {
				_, err := tx.AppendAudit(ctx, AuditRecord{Action: AuditDeny, Reason: "uncommitted"})
				appended <- err
				<-release
				return err
			})
		}()
		if err := <-appended; err != nil {
			close(release)
			t.Fatalf("AppendAudit in a transaction: %v", err)
		}

		readCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		head, err := reader.AuditHead(readCtx)
		cancel()
		close(release)
		if err := <-txDone; err != nil {
			t.Fatalf("transaction: %v", err)
		}
		if err != nil {
			t.Fatalf("AuditHead while an append holds the head: %v", err)
		}
		if head.Seq != committed.Seq {
			t.Errorf("AuditHead while an append holds the head: seq %d, want the committed %d", head.Seq, committed.Seq)
		}
		if !bytes.Equal(head.Hash, committed.Hash) {
			t.Errorf("AuditHead while an append holds the head: hash %x, want the committed %x", head.Hash, committed.Hash)
		}
	})
}
