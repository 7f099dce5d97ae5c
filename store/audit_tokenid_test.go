package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fieldHex returns the hex of s as the canonical encoding writes a text
// field: a big-endian uint32 length and the bytes.
func fieldHex(s string) string {
	return hex.EncodeToString(appendField(nil, s))
}

func TestAuditEncodingTokenID(t *testing.T) {
	const requestID, tokenID = "3f2a9c0d1e4b5a67", "9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
	withToken := v1Record
	withToken.TokenID = tokenID
	withBoth := withToken
	withBoth.RequestID = requestID
	withRequest := v1Record
	withRequest.RequestID = requestID
	tests := []struct {
		name     string
		rec      AuditRecord
		encoding string
	}{
		{name: "request ID only as before", rec: withRequest, encoding: v1Encoding + fieldHex(requestID)},
		{name: "token ID after empty request ID", rec: withToken, encoding: v1Encoding + fieldHex("") + fieldHex(tokenID)},
		{name: "token ID after request ID", rec: withBoth, encoding: v1Encoding + fieldHex(requestID) + fieldHex(tokenID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(tt.rec.CanonicalEncoding()); got != tt.encoding {
				t.Errorf("CanonicalEncoding =\n%s\nwant\n%s", got, tt.encoding)
			}
		})
	}

	// The same value as a request ID or as a token ID, or in a record with
	// or without a request ID, must hash differently.
	sameAsRequest := v1Record
	sameAsRequest.TokenID = requestID
	hashes := map[string]string{}
	for name, rec := range map[string]AuditRecord{"no IDs": v1Record, "request ID": withRequest,
		"token ID": withToken, "both": withBoth, "request ID value as token ID": sameAsRequest} {
		h := hex.EncodeToString(rec.ComputeHash())
		if other, ok := hashes[h]; ok {
			t.Errorf("records with %s and with %s have the same hash %s", name, other, h)
		}
		hashes[h] = name
	}
}

// tokenIDFor returns the token ID of the i-th record that appendTokenMixed
// appends, or "" when that record has none.
func tokenIDFor(i int) string {
	if i%4 < 2 {
		return ""
	}
	return fmt.Sprintf("tok-%02d", i)
}

// appendTokenMixed appends records through every append path. Record i
// has no IDs when i%4 is 0, a request ID when it is 1, a token ID when it
// is 2 and both when it is 3.
func appendTokenMixed(t *testing.T, s *sqlStore) []AuditRecord {
	t.Helper()
	return appendEveryPath(t, s, func(i int) AuditRecord {
		rec := AuditRecord{Action: AuditAttest, Requester: "session:abc", Verdict: "affirming", TokenID: tokenIDFor(i)}
		if i%2 == 1 {
			rec.RequestID = fmt.Sprintf("req-%02d", i)
		}
		return rec
	})
}

func TestAuditChainMixedTokenIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		appended := appendTokenMixed(t, s)

		v, err := s.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("VerifyAudit: %v", err)
		}
		if v.Broken != nil || v.Records != int64(len(appended)) {
			t.Fatalf("VerifyAudit = %d records, break %+v; want %d, intact", v.Records, v.Broken, len(appended))
		}

		list, err := s.ListAudit(ctx, AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(appended) {
			t.Fatalf("ListAudit returned %d records, want %d", len(list), len(appended))
		}
		for i, got := range list {
			if got.TokenID != tokenIDFor(i) {
				t.Errorf("record %d: stored token ID %q, want %q", got.Seq, got.TokenID, tokenIDFor(i))
			}
			if got.RequestID != appended[i].RequestID {
				t.Errorf("record %d: stored request ID %q, want %q", got.Seq, got.RequestID, appended[i].RequestID)
			}
			if !bytes.Equal(got.Hash, got.ComputeHash()) {
				t.Errorf("record %d: stored hash does not match the hash of the listed record", got.Seq)
			}
		}
	})
}

func TestAuditTokenIDTamperDetected(t *testing.T) {
	// appendTokenMixed gives record seq the index i = seq-1: seq 2 and 6
	// have only a request ID, seq 3 and 7 only a token ID, seq 4 and 8
	// both.
	tests := []struct {
		name    string
		tamper  string
		wantSeq int64
	}{
		{name: "changed token ID", tamper: `UPDATE audit_log SET token_id = 'tok-99' WHERE seq = 3`, wantSeq: 3},
		{name: "removed token ID", tamper: `UPDATE audit_log SET token_id = '' WHERE seq = 4`, wantSeq: 4},
		{name: "added token ID", tamper: `UPDATE audit_log SET token_id = 'tok-99' WHERE seq = 2`, wantSeq: 2},
		{name: "token ID moved to request ID", tamper: `UPDATE audit_log SET request_id = token_id, token_id = '' WHERE seq = 7`, wantSeq: 7},
		{name: "request ID moved to token ID", tamper: `UPDATE audit_log SET token_id = request_id, request_id = '' WHERE seq = 6`, wantSeq: 6},
		{name: "IDs swapped", tamper: `UPDATE audit_log SET token_id = request_id, request_id = token_id WHERE seq = 8`, wantSeq: 8},
	}
	forEachBackend(t, func(t *testing.T, b testBackend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t, b.config())
				dropAppendOnlyTriggers(t, s)
				if _, err := s.db.Exec(`DELETE FROM audit_log`); err != nil {
					t.Fatal(err)
				}
				resetHead(t, s)
				appendTokenMixed(t, s)

				if _, err := s.db.Exec(tt.tamper); err != nil {
					t.Fatalf("tamper: %v", err)
				}
				v, err := s.VerifyAudit(context.Background())
				if err != nil {
					t.Fatalf("VerifyAudit: %v", err)
				}
				if v.Broken == nil {
					t.Fatal("VerifyAudit did not detect the change")
				}
				if v.Broken.Seq != tt.wantSeq {
					t.Errorf("first broken record = %d (%s), want %d", v.Broken.Seq, v.Broken.Reason, tt.wantSeq)
				}
				if v.Records != tt.wantSeq-1 {
					t.Errorf("VerifyAudit counted %d intact records, want %d", v.Records, tt.wantSeq-1)
				}
			})
		}
	})
}

func TestListAuditByTokenID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		for _, rec := range []AuditRecord{
			{Action: AuditAttest, Requester: "session:aaaa", TokenID: "tok-a"},
			{Action: AuditAttest, Requester: "session:bbbb", TokenID: "tok-b"},
			{Action: AuditRelease, Requester: "token:tok-a", TokenID: "tok-a", Resource: "default/key/1"},
			{Action: AuditDeny, Requester: "token:tok-b", TokenID: "tok-b", Resource: "default/key/2"},
			{Action: AuditAdmin, Requester: "api-key", RequestID: "tok-a"},
			{Action: AuditRelease, Requester: "token:tok-a", TokenID: "tok-a", Resource: "default/key/3"},
		} {
			if _, err := s.AppendAudit(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}

		tests := []struct {
			name    string
			q       AuditQuery
			wantSeq []int64
		}{
			// The admin record's request ID equals the token ID, but only
			// the token ID column matches.
			{name: "token", q: AuditQuery{TokenID: "tok-a"}, wantSeq: []int64{1, 3, 6}},
			{name: "token and action", q: AuditQuery{TokenID: "tok-a", Action: AuditRelease}, wantSeq: []int64{3, 6}},
			{name: "token after seq", q: AuditQuery{TokenID: "tok-a", AfterSeq: 3}, wantSeq: []int64{6}},
			{name: "token with limit", q: AuditQuery{TokenID: "tok-b", Limit: 1}, wantSeq: []int64{2}},
			{name: "unknown token", q: AuditQuery{TokenID: "tok-c"}, wantSeq: nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				list, err := s.ListAudit(ctx, tt.q)
				if err != nil {
					t.Fatalf("ListAudit: %v", err)
				}
				var seqs []int64
				for _, r := range list {
					seqs = append(seqs, r.Seq)
				}
				if fmt.Sprint(seqs) != fmt.Sprint(tt.wantSeq) {
					t.Errorf("ListAudit(%+v) returned records %v, want %v", tt.q, seqs, tt.wantSeq)
				}
			})
		}
	})
}

// The listing by token ID must use the partial index on SQLite, whose
// planner takes it only when the query repeats the index's predicate.
func TestListAuditByTokenIDUsesIndex(t *testing.T) {
	s := open(t, Config{DataDir: t.TempDir()})
	query, args := auditListQuery(AuditQuery{TokenID: "tok-a"}, auditColumns)
	rows, err := s.db.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "audit_log_token_id") {
		t.Errorf("query plan does not use the index audit_log_token_id:\n%s", plan.String())
	}
}

// openBeforeTokenID creates the database of b migrated up to migration
// 0005, as the release before token IDs left it, with records appended
// the way that release appended them, every second one with a request ID,
// and returns those records.
func openBeforeTokenID(t *testing.T, b testBackend, n int) []AuditRecord {
	t.Helper()
	ctx := context.Background()
	db, d, err := openDatabase(b.config(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	applied, err := migrateUpTo(ctx, db, d, 0, auditTokenIDMigration-1)
	if err != nil {
		t.Fatalf("migrate to 0005: %v", err)
	}
	if len(applied) != auditTokenIDMigration-1 {
		t.Fatalf("applied migrations %v, want the first %d", applied, auditTokenIDMigration-1)
	}

	var recs []AuditRecord
	prev := make([]byte, 32)
	for i := range n {
		rec := AuditRecord{Seq: int64(i + 1), Time: time.UnixMicro(1700000000000000 + int64(i)).UTC(), Action: AuditRelease,
			Requester: "token:tok-old", TEE: "snp", Verdict: "released", Resource: fmt.Sprintf("default/key/%d", i), PrevHash: prev}
		if i%2 == 1 {
			rec.RequestID = fmt.Sprintf("req-%02d", i)
		}
		rec.Hash = rec.ComputeHash()
		if _, err := db.ExecContext(ctx, `INSERT INTO audit_log (seq, time, action, requester, tee, evidence_digest,
			policy_digest, verdict, resource, reason, prev_hash, hash, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			rec.Seq, micros(rec.Time), string(rec.Action), rec.Requester, rec.TEE, rec.EvidenceDigest, rec.PolicyDigest,
			rec.Verdict, rec.Resource, rec.Reason, []byte(rec.PrevHash), []byte(rec.Hash), rec.RequestID); err != nil {
			t.Fatalf("insert record %d into the 0005 schema: %v", rec.Seq, err)
		}
		prev = rec.Hash
		recs = append(recs, rec)
	}
	if _, err := db.ExecContext(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, int64(n), prev); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestAuditVerifiesAcrossTokenIDMigration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		const old = 6
		before := openBeforeTokenID(t, b, old)

		// cloister audit verify opens the database without migrating it.
		cfg := b.config()
		cfg.SkipMigrations = true
		unmigrated := open(t, cfg)
		v, err := unmigrated.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("VerifyAudit before migration 0006: %v", err)
		}
		if v.Broken != nil || v.Records != old {
			t.Errorf("VerifyAudit before migration 0006 = %d records, break %+v; want %d, intact", v.Records, v.Broken, old)
		}

		s := open(t, b.config())
		var applied int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, auditTokenIDMigration).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if applied != 1 {
			t.Fatalf("migration 0006 recorded %d times, want 1", applied)
		}
		v, err = s.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("VerifyAudit after migration 0006: %v", err)
		}
		if v.Broken != nil || v.Records != old {
			t.Errorf("VerifyAudit after migration 0006 = %d records, break %+v; want %d, intact", v.Records, v.Broken, old)
		}
		for _, rec := range before {
			got := mustRecord(t, s, rec.Seq)
			if got.TokenID != "" {
				t.Errorf("old record %d after migration: token ID %q, want empty", rec.Seq, got.TokenID)
			}
			if got.RequestID != rec.RequestID {
				t.Errorf("old record %d after migration: request ID %q, want %q", rec.Seq, got.RequestID, rec.RequestID)
			}
			if !bytes.Equal(got.Hash, rec.Hash) {
				t.Errorf("old record %d after migration: hash %x, want %x", rec.Seq, got.Hash, rec.Hash)
			}
		}

		// New records, some with token IDs, chain on from the old ones.
		appended := appendTokenMixed(t, s)
		if appended[0].Seq != old+1 || !bytes.Equal(appended[0].PrevHash, before[old-1].Hash) {
			t.Errorf("first new record: seq %d, prev %x; want %d and the last old record's hash", appended[0].Seq, appended[0].PrevHash, old+1)
		}
		v, err = s.VerifyAudit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(old + len(appended)); v.Broken != nil || v.Records != want {
			t.Errorf("VerifyAudit of old and new records = %d records, break %+v; want %d, intact", v.Records, v.Broken, want)
		}
		list, err := s.ListAudit(ctx, AuditQuery{TokenID: tokenIDFor(2)})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Seq != old+3 {
			t.Errorf("ListAudit by token ID %s returned %+v, want record %d only", tokenIDFor(2), list, old+3)
		}

		// The append-only triggers still reject changes after the
		// migration.
		if _, err := s.db.Exec(`UPDATE audit_log SET token_id = 'forged' WHERE seq = 1`); err == nil {
			t.Error("UPDATE of token_id succeeded, want the append-only trigger to reject it")
		}
	})
}
