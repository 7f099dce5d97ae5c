package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func appendRecords(t *testing.T, s Store, n int) {
	t.Helper()
	for i := range n {
		_, err := s.AppendAudit(context.Background(), AuditRecord{
			Action: AuditRelease, Requester: "10.0.0.1", TEE: "snp", Verdict: "allow",
			Resource: fmt.Sprintf("default/key/%d", i), EvidenceDigest: "e3b0c442", PolicyDigest: "9f86d081",
		})
		if err != nil {
			t.Fatalf("AppendAudit %d: %v", i, err)
		}
	}
}

func TestAuditChainVerifies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())

		v, err := s.VerifyAudit(ctx)
		if err != nil || v.Broken != nil || v.Records != 0 {
			t.Fatalf("VerifyAudit of empty log = %+v, %v; want 0 records, intact", v, err)
		}

		appendRecords(t, s, 10)
		v, err = s.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("VerifyAudit: %v", err)
		}
		if v.Broken != nil {
			t.Fatalf("VerifyAudit reports a break in an untouched chain: %+v", v.Broken)
		}
		if v.Records != 10 {
			t.Errorf("VerifyAudit checked %d records, want 10", v.Records)
		}

		list, err := s.ListAudit(ctx, AuditQuery{AfterSeq: 7})
		if err != nil {
			t.Fatalf("ListAudit: %v", err)
		}
		if len(list) != 3 || list[0].Seq != 8 {
			t.Errorf("ListAudit(after 7) returned %d records starting at %v, want 3 from seq 8", len(list), list)
		}
		if !bytes.Equal(list[0].PrevHash, mustRecord(t, s, 7).Hash) {
			t.Error("record 8's previous hash is not record 7's hash")
		}
		if !bytes.Equal(v.Head, list[2].Hash) {
			t.Error("VerifyAudit head is not the last record's hash")
		}
	})
}

func mustRecord(t *testing.T, s Store, seq int64) AuditRecord {
	t.Helper()
	list, err := s.ListAudit(context.Background(), AuditQuery{AfterSeq: seq - 1, Limit: 1})
	if err != nil || len(list) != 1 {
		t.Fatalf("read audit record %d: %v", seq, err)
	}
	return list[0]
}

func TestAuditTamperDetected(t *testing.T) {
	six := func(t *testing.T, s *sqlStore) { appendRecords(t, s, 6) }
	// mixed gives odd sequence numbers no request ID and even ones
	// "req-NN" with NN = seq-1.
	mixed := func(t *testing.T, s *sqlStore) { appendMixed(t, s) }
	// tokens gives seq 2 and 6 only a request ID, seq 3 and 7 only a
	// token ID, and seq 4 and 8 both.
	tokens := func(t *testing.T, s *sqlStore) { appendTokenMixed(t, s) }
	// devices gives seq 1 no optional field, seq 4 both IDs and no
	// devices, seq 5 devices only and seq 8 all three.
	devices := func(t *testing.T, s *sqlStore) { appendDevicesMixed(t, s) }
	tests := []struct {
		name    string
		append  func(t *testing.T, s *sqlStore)
		tamper  string
		wantSeq int64
		// wantRecords is the count of records that verified before the
		// break.
		wantRecords int64
	}{
		{name: "modified field", append: six, tamper: `UPDATE audit_log SET verdict = 'deny' WHERE seq = 3`, wantSeq: 3, wantRecords: 2},
		{name: "modified time", append: six, tamper: `UPDATE audit_log SET time = time + 1 WHERE seq = 5`, wantSeq: 5, wantRecords: 4},
		{name: "deleted record", append: six, tamper: `DELETE FROM audit_log WHERE seq = 4`, wantSeq: 4, wantRecords: 3},
		{name: "rehashed record", append: six, tamper: `UPDATE audit_log SET hash = prev_hash WHERE seq = 2`, wantSeq: 2, wantRecords: 1},
		{name: "truncated end", append: six, tamper: `DELETE FROM audit_log WHERE seq >= 5`, wantSeq: 6, wantRecords: 4},
		{name: "modified head", append: six, tamper: `UPDATE audit_head SET hash = (SELECT hash FROM audit_log WHERE seq = 5) WHERE id = 1`, wantSeq: 6, wantRecords: 6},
		{name: "renumbered record", append: six, tamper: `UPDATE audit_log SET seq = 100 WHERE seq = 3`, wantSeq: 3, wantRecords: 2},
		{name: "renumbered last record", append: six, tamper: `UPDATE audit_log SET seq = 100 WHERE seq = 6`, wantSeq: 6, wantRecords: 5},
		{name: "record inserted past head", append: six, tamper: forgedAfter(6, 7), wantSeq: 7, wantRecords: 6},
		{name: "record inserted far past head", append: six, tamper: forgedAfter(6, 1000), wantSeq: 1000, wantRecords: 6},
		{name: "changed request ID", append: mixed, tamper: `UPDATE audit_log SET request_id = 'req-99' WHERE seq = 4`, wantSeq: 4, wantRecords: 3},
		{name: "removed request ID", append: mixed, tamper: `UPDATE audit_log SET request_id = '' WHERE seq = 6`, wantSeq: 6, wantRecords: 5},
		{name: "added request ID", append: mixed, tamper: `UPDATE audit_log SET request_id = 'req-99' WHERE seq = 3`, wantSeq: 3, wantRecords: 2},
		{name: "added to batch record", append: mixed, tamper: `UPDATE audit_log SET request_id = 'req-99' WHERE seq = 7`, wantSeq: 7, wantRecords: 6},
		{name: "changed token ID", append: tokens, tamper: `UPDATE audit_log SET token_id = 'tok-99' WHERE seq = 3`, wantSeq: 3, wantRecords: 2},
		{name: "removed token ID", append: tokens, tamper: `UPDATE audit_log SET token_id = '' WHERE seq = 4`, wantSeq: 4, wantRecords: 3},
		{name: "added token ID", append: tokens, tamper: `UPDATE audit_log SET token_id = 'tok-99' WHERE seq = 2`, wantSeq: 2, wantRecords: 1},
		{name: "token ID moved to request ID", append: tokens, tamper: `UPDATE audit_log SET request_id = token_id, token_id = '' WHERE seq = 7`, wantSeq: 7, wantRecords: 6},
		{name: "request ID moved to token ID", append: tokens, tamper: `UPDATE audit_log SET token_id = request_id, request_id = '' WHERE seq = 6`, wantSeq: 6, wantRecords: 5},
		{name: "request and token IDs swapped", append: tokens, tamper: `UPDATE audit_log SET token_id = request_id, request_id = token_id WHERE seq = 8`, wantSeq: 8, wantRecords: 7},
		{name: "changed devices", append: devices, tamper: `UPDATE audit_log SET devices = replace(devices, 'affirming', 'warning') WHERE seq = 5`, wantSeq: 5, wantRecords: 4},
		{name: "removed devices", append: devices, tamper: `UPDATE audit_log SET devices = '' WHERE seq = 8`, wantSeq: 8, wantRecords: 7},
		{name: "added devices", append: devices, tamper: `UPDATE audit_log SET devices = 'gpu0 nvidia-gpu' WHERE seq = 4`, wantSeq: 4, wantRecords: 3},
		{name: "added devices to empty record", append: devices, tamper: `UPDATE audit_log SET devices = 'gpu0 nvidia-gpu' WHERE seq = 1`, wantSeq: 1, wantRecords: 0},
		{name: "devices moved to token ID", append: devices, tamper: `UPDATE audit_log SET token_id = devices, devices = '' WHERE seq = 5`, wantSeq: 5, wantRecords: 4},
	}
	forEachBackend(t, func(t *testing.T, b testBackend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				s := open(t, b.config())
				dropAppendOnlyTriggers(t, s)
				if _, err := s.db.Exec(`DELETE FROM audit_log`); err != nil {
					t.Fatal(err)
				}
				resetHead(t, s)
				tt.append(t, s)

				if _, err := s.db.Exec(tt.tamper); err != nil {
					t.Fatalf("tamper: %v", err)
				}
				v, err := s.VerifyAudit(ctx)
				if err != nil {
					t.Fatalf("VerifyAudit: %v", err)
				}
				if v.Broken == nil {
					t.Fatal("VerifyAudit did not detect the change")
				}
				if v.Broken.Seq != tt.wantSeq {
					t.Errorf("first broken record = %d (%s), want %d", v.Broken.Seq, v.Broken.Reason, tt.wantSeq)
				}
				if v.Broken.Reason == "" {
					t.Error("break has no reason")
				}
				if v.Records != tt.wantRecords {
					t.Errorf("VerifyAudit counted %d intact records, want %d", v.Records, tt.wantRecords)
				}
			})
		}
	})
}

// forgedAfter returns an INSERT of a record with sequence number seq that
// links to record prev, as someone with write access to the database could
// add it without updating the chain head.
func forgedAfter(prev, seq int64) string {
	return fmt.Sprintf(`INSERT INTO audit_log (`+auditFirstColumns+`)
		SELECT %d, time, action, requester, tee, evidence_digest, policy_digest, 'allow', 'default/key/forged', reason, hash, hash
		FROM audit_log WHERE seq = %d`, seq, prev)
}

// resetHead resets the chain head so that each case starts a new chain.
func resetHead(t *testing.T, s *sqlStore) {
	t.Helper()
	if _, err := s.db.Exec(`UPDATE audit_head SET seq = 0, hash = $1 WHERE id = 1`, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
}

// dropAppendOnlyTriggers removes the triggers that reject changes to audit
// records, as someone with full database access could, so that a test can
// tamper with records.
func dropAppendOnlyTriggers(t *testing.T, s *sqlStore) {
	t.Helper()
	stmts := []string{`DROP TRIGGER IF EXISTS audit_log_no_update`, `DROP TRIGGER IF EXISTS audit_log_no_delete`}
	if s.d.postgres {
		stmts = []string{`DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log`, `DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log`}
	}
	for _, stmt := range stmts {
		if _, err := s.db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func TestAuditLogAppendOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := open(t, b.config())
		appendRecords(t, s, 2)
		for _, stmt := range []string{`UPDATE audit_log SET reason = 'edited' WHERE seq = 1`, `DELETE FROM audit_log WHERE seq = 2`} {
			if _, err := s.db.Exec(stmt); err == nil {
				t.Errorf("%s succeeded, want the append-only trigger to reject it", stmt)
			}
		}
		v, err := s.VerifyAudit(context.Background())
		if err != nil || v.Broken != nil || v.Records != 2 {
			t.Errorf("VerifyAudit after rejected changes = %+v, %v; want 2 intact records", v, err)
		}
	})
}

func TestAuditTamperNamesHashes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := open(t, b.config())
		dropAppendOnlyTriggers(t, s)
		appendRecords(t, s, 3)
		stored := mustRecord(t, s, 2)
		if _, err := s.db.Exec(`UPDATE audit_log SET reason = 'edited' WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}

		v, err := s.VerifyAudit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if v.Broken == nil {
			t.Fatal("no break reported")
		}
		if !bytes.Equal(v.Broken.Stored, stored.Hash) {
			t.Errorf("break stored hash = %x, want record 2's hash %x", v.Broken.Stored, stored.Hash)
		}
		edited := stored
		edited.Reason = "edited"
		if !bytes.Equal(v.Broken.Computed, edited.ComputeHash()) {
			t.Errorf("break computed hash = %x, want the hash of the edited record", v.Broken.Computed)
		}
	})
}

// Several appends in one transaction chain one after another, and the
// next transaction chains from the last of them.
func TestAuditAppendsInOneTransaction(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		appendRecords(t, s, 1)

		var inTx []AuditRecord
		err := s.Tx(ctx, func(tx Tx) error {
			for _, action := range []AuditAction{AuditAttest, AuditRelease, AuditDeny} {
				rec, err := tx.AppendAudit(ctx, AuditRecord{Action: action, Verdict: "v"})
				if err != nil {
					return err
				}
				inTx = append(inTx, rec)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, rec := range inTx {
			if rec.Seq != int64(i+2) {
				t.Errorf("record %d of the transaction has seq %d, want %d", i, rec.Seq, i+2)
			}
		}
		if !bytes.Equal(inTx[0].PrevHash, mustRecord(t, s, 1).Hash) {
			t.Error("the transaction's first record does not chain from the record before it")
		}
		if !bytes.Equal(inTx[2].PrevHash, inTx[1].Hash) {
			t.Error("the transaction's last record does not chain from its second")
		}

		next, err := s.AppendAudit(ctx, AuditRecord{Action: AuditAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if next.Seq != 5 || !bytes.Equal(next.PrevHash, inTx[2].Hash) {
			t.Errorf("next record: seq %d, prev %x; want 5 and the transaction's last hash %x", next.Seq, next.PrevHash, inTx[2].Hash)
		}
		v, err := s.VerifyAudit(ctx)
		if err != nil || v.Broken != nil || v.Records != 5 {
			t.Errorf("VerifyAudit = %+v, %v; want 5 intact records", v, err)
		}
	})
}

func TestAuditEmptyBatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		err := s.Tx(ctx, func(tx Tx) error {
			out, err := tx.(*ops).appendAuditBatch(ctx, nil)
			if len(out) != 0 {
				t.Errorf("empty batch appended %d records", len(out))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.VerifyAudit(ctx); err != nil || v.Records != 0 || v.Broken != nil {
			t.Errorf("VerifyAudit = %+v, %v; want an empty, intact log", v, err)
		}
	})
}

func TestAuditRolledBackWithAction(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		now := time.Now().UTC()
		if err := s.IssueNonce(ctx, Nonce{Value: "rollback", Expires: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}

		errAction := errors.New("policy evaluation failed")
		err := s.Tx(ctx, func(tx Tx) error {
			if _, err := tx.ConsumeNonce(ctx, "rollback", now); err != nil {
				return err
			}
			if _, err := tx.AppendAudit(ctx, AuditRecord{Action: AuditAttest, Verdict: "affirming"}); err != nil {
				return err
			}
			return errAction
		})
		if !errors.Is(err, errAction) {
			t.Fatalf("Tx error = %v, want the action's error", err)
		}

		list, err := s.ListAudit(ctx, AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 0 {
			t.Errorf("audit log has %d records after rollback, want 0", len(list))
		}
		if _, err := s.ConsumeNonce(ctx, "rollback", now); err != nil {
			t.Errorf("nonce is not consumable after rollback: %v", err)
		}

		// The next append must chain from the genesis hash, not from the
		// rolled-back record.
		rec, err := s.AppendAudit(ctx, AuditRecord{Action: AuditAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Seq != 1 || !bytes.Equal(rec.PrevHash, make([]byte, 32)) {
			t.Errorf("first record after rollback: seq %d, prev %x; want 1 and zero hash", rec.Seq, rec.PrevHash)
		}
	})
}

func TestAuditGroupCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		replicas := []*sqlStore{open(t, b.config()), open(t, b.config())}

		const appends = 60
		var wg sync.WaitGroup

		// Verification running beside the appends must not mistake records
		// committed during its walk for a broken chain.
		verifyDone := make(chan error, 1)
		go func() {
			for range 5 {
				v, err := replicas[1].VerifyAudit(ctx)
				if err == nil && v.Broken != nil {
					err = fmt.Errorf("VerifyAudit during appends reports a break: %+v", v.Broken)
				}
				if err != nil {
					verifyDone <- err
					return
				}
			}
			verifyDone <- nil
		}()

		seqs := make([]int64, appends)
		errs := make([]error, appends)
		for i := range appends {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec, err := replicas[i%2].AppendAuditGrouped(ctx, AuditRecord{Action: AuditDeny, Reason: fmt.Sprintf("request %d", i)})
				seqs[i], errs[i] = rec.Seq, err
			}()
		}
		wg.Wait()
		if err := <-verifyDone; err != nil {
			t.Error(err)
		}

		seen := map[int64]bool{}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
			if seen[seqs[i]] {
				t.Errorf("sequence number %d returned twice", seqs[i])
			}
			seen[seqs[i]] = true
		}
		v, err := replicas[0].VerifyAudit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.Broken != nil || v.Records != appends {
			t.Errorf("VerifyAudit = %d records, break %+v; want %d, intact", v.Records, v.Broken, appends)
		}
	})
}

func TestAuditRejectsUnknownAction(t *testing.T) {
	s := open(t, Config{DataDir: t.TempDir()})
	if _, err := s.AppendAudit(context.Background(), AuditRecord{Action: "delete"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AppendAudit with unknown action: err = %v, want ErrInvalid", err)
	}
}

func TestAuditAppendAfterClose(t *testing.T) {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.AppendAuditGrouped(context.Background(), AuditRecord{Action: AuditDeny}); err == nil {
		t.Error("AppendAuditGrouped after Close succeeded")
	}
}
