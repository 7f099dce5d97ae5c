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

// v1Record is the record behind the fixed vectors below. v1Encoding and
// v1Hash were computed by the code before AuditRecord had a RequestID, so
// they pin the encoding that every stored record without a request ID was
// hashed with.
var v1Record = AuditRecord{
	Seq: 42, Time: time.UnixMicro(1700000000123456).UTC(), Action: AuditDeny,
	Requester: "192.0.2.7", TEE: "snp", EvidenceDigest: "e3b0c442", PolicyDigest: "9f86d081",
	Verdict: "deny", Resource: "default/key/1", Reason: "policy denied: debug enabled",
	PrevHash: make([]byte, 32),
}

const (
	v1Encoding = "00000018636c6f6973746572206175646974207265636f7264207631000000000000002a00060a2418202240" +
		"0000000464656e79000000093139322e302e322e3700000003736e70000000086533623063343432000000083966" +
		"3836643038310000000464656e790000000d64656661756c742f6b65792f310000001c706f6c6963792064656e69" +
		"65643a20646562756720656e61626c6564"
	v1Hash = "b331169511726bc9f4d07af2855223308bee04bf6b275a3ec727018034b22612"

	// v1EmptyEncoding is the v1 encoding of an admin record with sequence
	// number 1, time 0 and every text field empty.
	v1EmptyEncoding = "00000018636c6f6973746572206175646974207265636f7264207631" +
		"0000000000000001" + "0000000000000000" + "0000000561646d696e" + "00000000000000000000000000000000000000000000000000000000"
)

func TestAuditEncodingRequestID(t *testing.T) {
	withID := v1Record
	withID.RequestID = "3f2a9c0d1e4b5a67"
	tests := []struct {
		name     string
		rec      AuditRecord
		encoding string
	}{
		{name: "no request ID is v1", rec: v1Record, encoding: v1Encoding},
		{name: "empty record is v1", rec: AuditRecord{Seq: 1, Time: time.UnixMicro(0).UTC(), Action: AuditAdmin},
			encoding: v1EmptyEncoding},
		{name: "request ID appended", rec: withID,
			encoding: v1Encoding + "00000010" + hex.EncodeToString([]byte("3f2a9c0d1e4b5a67"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(tt.rec.CanonicalEncoding()); got != tt.encoding {
				t.Errorf("CanonicalEncoding =\n%s\nwant\n%s", got, tt.encoding)
			}
		})
	}

	if got := hex.EncodeToString(v1Record.ComputeHash()); got != v1Hash {
		t.Errorf("ComputeHash of a record without a request ID = %s, want the v1 hash %s", got, v1Hash)
	}
	if bytes.Equal(withID.ComputeHash(), v1Record.ComputeHash()) {
		t.Error("a request ID does not change the hash")
	}
}

// The batch INSERT of a full group commit must stay below SQLite's limit
// of bound parameters.
func TestAuditBatchWithinParameterLimit(t *testing.T) {
	if n := maxBatchLimit * auditInsertColumns; n > 32766 {
		t.Errorf("a batch of %d records binds %d parameters, above SQLite's default limit of 32766", maxBatchLimit, n)
	}
}

// appendMixed appends records through every append path, alternating
// between records with and without a request ID, and returns what it
// appended in sequence order.
func appendMixed(t *testing.T, s *sqlStore) []AuditRecord {
	t.Helper()
	idFor := func(i int) string {
		if i%2 == 0 {
			return ""
		}
		return fmt.Sprintf("req-%02d", i)
	}
	return appendEveryPath(t, s, func(i int) AuditRecord {
		return AuditRecord{Action: AuditDeny, Requester: "session:abc", Reason: fmt.Sprintf("record %d", i), RequestID: idFor(i)}
	})
}

// appendEveryPath appends newRecord(0) to newRecord(7): two through
// AppendAudit, two through AppendAuditGrouped and four in one multi-row
// INSERT, and returns what it appended in sequence order.
func appendEveryPath(t *testing.T, s *sqlStore, newRecord func(i int) AuditRecord) []AuditRecord {
	t.Helper()
	ctx := context.Background()

	var out []AuditRecord
	for i := range 2 {
		rec, err := s.AppendAudit(ctx, newRecord(i))
		if err != nil {
			t.Fatalf("AppendAudit %d: %v", i, err)
		}
		out = append(out, rec)
	}
	for i := 2; i < 4; i++ {
		rec, err := s.AppendAuditGrouped(ctx, newRecord(i))
		if err != nil {
			t.Fatalf("AppendAuditGrouped %d: %v", i, err)
		}
		out = append(out, rec)
	}
	// The last four go into one multi-row INSERT.
	err := s.Tx(ctx, func(tx Tx) error {
		o := tx.(*ops)
		var batch []AuditRecord
		for i := 4; i < 8; i++ {
			rec, err := o.prepareAudit(newRecord(i))
			if err != nil {
				return err
			}
			batch = append(batch, rec)
		}
		recs, err := o.appendAuditBatch(ctx, batch)
		out = append(out, recs...)
		return err
	})
	if err != nil {
		t.Fatalf("appendAuditBatch: %v", err)
	}
	return out
}

func TestAuditChainMixedIDs(t *testing.T) {
	appenders := []struct {
		name      string
		appendNew func(*testing.T, *sqlStore) []AuditRecord
	}{
		{name: "request IDs", appendNew: appendMixed},
		{name: "request and token IDs", appendNew: appendTokenMixed},
		{name: "IDs and devices", appendNew: appendDevicesMixed},
	}
	for _, a := range appenders {
		// Each appender gets new databases, because a chain starts at
		// sequence number 1 only in an empty log.
		t.Run(a.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b testBackend) {
				ctx := context.Background()
				s := open(t, b.config())
				appended := a.appendNew(t, s)

				v, err := s.VerifyAudit(ctx)
				if err != nil {
					t.Fatalf("VerifyAudit: %v", err)
				}
				if v.Broken != nil {
					t.Fatalf("VerifyAudit reports a break in an untouched chain: %+v", v.Broken)
				}
				if v.Records != int64(len(appended)) {
					t.Errorf("VerifyAudit checked %d records, want %d", v.Records, len(appended))
				}

				list, err := s.ListAudit(ctx, AuditQuery{})
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != len(appended) {
					t.Fatalf("ListAudit returned %d records, want %d", len(list), len(appended))
				}
				for i, got := range list {
					if got.RequestID != appended[i].RequestID {
						t.Errorf("record %d: stored request ID %q, want %q", got.Seq, got.RequestID, appended[i].RequestID)
					}
					if got.TokenID != appended[i].TokenID {
						t.Errorf("record %d: stored token ID %q, want %q", got.Seq, got.TokenID, appended[i].TokenID)
					}
					if got.Devices != appended[i].Devices {
						t.Errorf("record %d: stored devices %q, want %q", got.Seq, got.Devices, appended[i].Devices)
					}
					if !bytes.Equal(got.Hash, got.ComputeHash()) {
						t.Errorf("record %d: stored hash does not match the hash of the listed record", got.Seq)
					}
				}
			})
		})
	}
}

func TestAuditRequestIDTruncated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		rec, err := s.AppendAudit(ctx, AuditRecord{Action: AuditAdmin, RequestID: strings.Repeat("r", MaxAuditFieldSize+10)})
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.RequestID) != MaxAuditFieldSize {
			t.Errorf("appended request ID has %d bytes, want %d", len(rec.RequestID), MaxAuditFieldSize)
		}
		if got := mustRecord(t, s, rec.Seq).RequestID; got != rec.RequestID {
			t.Errorf("stored request ID has %d bytes, want the %d appended", len(got), len(rec.RequestID))
		}
		if v, err := s.VerifyAudit(ctx); err != nil || v.Broken != nil || v.Records != 1 {
			t.Errorf("VerifyAudit = %+v, %v; want 1 intact record", v, err)
		}
	})
}

// openMigratedTo creates the database of b migrated up to migration last,
// as the release at that migration left it, with n records appended the
// way that release appended them, and returns those records. Once the
// schema has a request_id column, every second record has a request ID,
// and once it has a token_id column, record i (counting from 0) has a
// token ID when i%4 is 2 or 3.
func openMigratedTo(t *testing.T, b testBackend, last int64, n int) []AuditRecord {
	t.Helper()
	ctx := context.Background()
	db, d, err := openDatabase(b.config(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	applied, err := migrateUpTo(ctx, db, d, 0, last)
	if err != nil {
		t.Fatalf("migrate to %04d: %v", last, err)
	}
	if int64(len(applied)) != last {
		t.Fatalf("applied migrations %v, want the first %d", applied, last)
	}

	var recs []AuditRecord
	prev := make([]byte, 32)
	for i := range n {
		rec := AuditRecord{Seq: int64(i + 1), Time: time.UnixMicro(1700000000000000 + int64(i)).UTC(), Action: AuditRelease,
			Requester: "session:abc", TEE: "snp", Verdict: "released", Resource: fmt.Sprintf("default/key/%d", i), PrevHash: prev}
		if last >= auditRequestIDMigration && i%2 == 1 {
			rec.RequestID = fmt.Sprintf("req-%02d", i)
		}
		if last >= auditTokenIDMigration && i%4 >= 2 {
			rec.TokenID = fmt.Sprintf("tok-%02d", i)
		}
		rec.Hash = rec.ComputeHash()
		columns := auditFirstColumns
		args := []any{rec.Seq, micros(rec.Time), string(rec.Action), rec.Requester, rec.TEE, rec.EvidenceDigest, rec.PolicyDigest,
			rec.Verdict, rec.Resource, rec.Reason, []byte(rec.PrevHash), []byte(rec.Hash)}
		for _, added := range []struct{ column, value string }{{"request_id", rec.RequestID}, {"token_id", rec.TokenID}} {
			if added.value != "" {
				columns += ", " + added.column
				args = append(args, added.value)
			}
		}
		placeholders := make([]string, len(args))
		for p := range placeholders {
			placeholders[p] = fmt.Sprintf("$%d", p+1)
		}
		values := strings.Join(placeholders, ", ")
		if _, err := db.ExecContext(ctx, `INSERT INTO audit_log (`+columns+`) VALUES (`+values+`)`, args...); err != nil {
			t.Fatalf("insert record %d into the %04d schema: %v", rec.Seq, last, err)
		}
		prev = rec.Hash
		recs = append(recs, rec)
	}
	if _, err := db.ExecContext(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, int64(n), prev); err != nil {
		t.Fatal(err)
	}
	return recs
}

// testVerifiesAcrossMigration checks on b that a chain written before
// migration verifies before and after it, with the old records unchanged.
// It then checks that the records appendNew appends chain on from the old
// ones, and that the append-only triggers reject an UPDATE of column,
// which the migration adds. It returns the migrated store and the new
// records.
func testVerifiesAcrossMigration(t *testing.T, b testBackend, migration int64, column string,
	appendNew func(*testing.T, *sqlStore) []AuditRecord) (*sqlStore, []AuditRecord) {
	t.Helper()
	ctx := context.Background()
	const old = 6
	before := openMigratedTo(t, b, migration-1, old)

	// cloister audit verify opens the database without migrating it.
	cfg := b.config()
	cfg.SkipMigrations = true
	unmigrated := open(t, cfg)
	v, err := unmigrated.VerifyAudit(ctx)
	if err != nil {
		t.Fatalf("VerifyAudit before migration %04d: %v", migration, err)
	}
	if v.Broken != nil || v.Records != old {
		t.Errorf("VerifyAudit before migration %04d = %d records, break %+v; want %d, intact", migration, v.Records, v.Broken, old)
	}

	s := open(t, b.config())
	var applied int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, migration).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 1 {
		t.Fatalf("migration %04d recorded %d times, want 1", migration, applied)
	}
	v, err = s.VerifyAudit(ctx)
	if err != nil {
		t.Fatalf("VerifyAudit after migration %04d: %v", migration, err)
	}
	if v.Broken != nil || v.Records != old {
		t.Errorf("VerifyAudit after migration %04d = %d records, break %+v; want %d, intact", migration, v.Records, v.Broken, old)
	}
	if !bytes.Equal(v.Head, before[old-1].Hash) {
		t.Errorf("head after migration = %x, want the last old record's hash %x", v.Head, before[old-1].Hash)
	}
	for _, rec := range before {
		got := mustRecord(t, s, rec.Seq)
		if got.RequestID != rec.RequestID || got.TokenID != rec.TokenID || got.Devices != "" {
			t.Errorf("old record %d after migration: request ID %q, token ID %q, devices %q; want %q, %q and none",
				rec.Seq, got.RequestID, got.TokenID, got.Devices, rec.RequestID, rec.TokenID)
		}
		if !bytes.Equal(got.Hash, rec.Hash) {
			t.Errorf("old record %d after migration: hash %x, want %x", rec.Seq, got.Hash, rec.Hash)
		}
	}

	appended := appendNew(t, s)
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

	// The append-only triggers still reject changes after the migration.
	if _, err := s.db.Exec(`UPDATE audit_log SET ` + column + ` = 'forged' WHERE seq = 1`); err == nil {
		t.Errorf("UPDATE of %s succeeded, want the append-only trigger to reject it", column)
	}
	return s, appended
}

func TestAuditVerifiesAcrossRequestIDMigration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		testVerifiesAcrossMigration(t, b, auditRequestIDMigration, "request_id", appendMixed)
	})
}
