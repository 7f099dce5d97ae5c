package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// auditEncodingLabel starts every canonical encoding. It separates audit
// hashes from other SHA-256 uses and names the encoding version.
const auditEncodingLabel = "cloister audit record v1"

// MaxAuditFieldSize bounds each text field of an audit record, in bytes.
// Longer fields, such as a reason that quotes large input, are cut to this
// size by the append methods before hashing.
const MaxAuditFieldSize = 4096

// CanonicalEncoding returns the bytes that Hash covers besides PrevHash:
// the label, Seq and Time (Unix microseconds) as big-endian int64, then each
// text field as a big-endian uint32 length and its bytes, in a fixed order.
// Length prefixes make the encoding unambiguous whatever the fields contain.
//
// RequestID, TokenID and Devices follow the eight fields of the first
// encoding in this order, and the encoding ends after the last of them that
// is not empty. An empty one before a non-empty one is written as an empty
// field. So a record encodes as it did before its empty trailing fields
// existed, and every stored hash still verifies. The length prefixes let a
// reader count the fields, and the count determines which field each value
// is: nine fields end with a request ID, ten with a token ID and eleven
// with the devices. So no two records encode alike, and the label stays v1.
func (r *AuditRecord) CanonicalEncoding() []byte {
	fields := [...]string{string(r.Action), r.Requester, r.TEE, r.EvidenceDigest,
		r.PolicyDigest, r.Verdict, r.Resource, r.Reason}
	optional := [...]string{r.RequestID, r.TokenID, r.Devices}
	written := len(optional)
	for written > 0 && optional[written-1] == "" {
		written--
	}
	size := 4 + len(auditEncodingLabel) + 8 + 8
	for _, f := range fields {
		size += 4 + len(f)
	}
	for _, f := range optional[:written] {
		size += 4 + len(f)
	}

	// Every audit append hashes each record, so the encoding is built in
	// one allocation instead of through binary.Write and its buffers.
	b := make([]byte, 0, size)
	b = appendField(b, auditEncodingLabel)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(micros(r.Time)))
	for _, f := range fields {
		b = appendField(b, f)
	}
	for _, f := range optional[:written] {
		b = appendField(b, f)
	}
	return b
}

// appendField appends s to b as a big-endian uint32 length and its bytes.
func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// ComputeHash returns SHA-256(PrevHash || CanonicalEncoding()).
func (r *AuditRecord) ComputeHash() []byte {
	h := sha256.New()
	h.Write(r.PrevHash)
	h.Write(r.CanonicalEncoding())
	return h.Sum(nil)
}

// prepareAudit validates rec and normalizes it to what the database stores.
func (o *ops) prepareAudit(rec AuditRecord) (AuditRecord, error) {
	switch rec.Action {
	case AuditAttest, AuditRelease, AuditDeny, AuditAdmin:
	default:
		return rec, fmt.Errorf("%w: audit action %q, want attest, release, deny or admin", ErrInvalid, rec.Action)
	}
	if rec.Time.IsZero() {
		rec.Time = o.s.cfg.now()
	}
	rec.Time = fromMicros(micros(rec.Time))
	for _, f := range []*string{&rec.Requester, &rec.TEE, &rec.EvidenceDigest, &rec.PolicyDigest,
		&rec.Verdict, &rec.Resource, &rec.Reason, &rec.RequestID, &rec.TokenID, &rec.Devices} {
		*f = truncateUTF8(storableText(*f), MaxAuditFieldSize)
	}
	return rec, nil
}

// storableText returns s with each NUL byte and each run of invalid UTF-8
// replaced by U+FFFD. Audit fields quote request input, such as a decoded
// URL path, and PostgreSQL TEXT rejects both, which would fail the append
// and every other record of its group-commit batch. SQLite stores them, but
// both backends replace them, so that a record reads the same in either.
func storableText(s string) string {
	if storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func (o *ops) AppendAudit(ctx context.Context, rec AuditRecord) (AuditRecord, error) {
	rec, err := o.prepareAudit(rec)
	if err != nil {
		return AuditRecord{}, err
	}
	out, err := o.appendAuditBatch(ctx, []AuditRecord{rec})
	if err != nil {
		return AuditRecord{}, err
	}
	return out[0], nil
}

// auditInsertColumns is the number of columns appendAuditBatch inserts per
// record.
const auditInsertColumns = 15

// auditHead is the sequence number and hash of the last audit record.
type auditHead struct {
	seq  int64
	hash []byte
}

// appendAuditBatch chains prepared records after the current head with one
// multi-row INSERT. Reading the head row (locked on PostgreSQL) serializes
// appends, so that two transactions never chain to the same predecessor.
// A transaction reads the head at its first append only and keeps it in
// o.head, and Tx writes it back once before the commit. The lock, or
// SQLite's write lock, is held until then, so no other append can
// interleave. Outside a transaction the head is read and written here.
func (o *ops) appendAuditBatch(ctx context.Context, recs []AuditRecord) ([]AuditRecord, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	var headSeq int64
	var headHash []byte
	if o.head != nil {
		headSeq, headHash = o.head.seq, o.head.hash
	} else if err := o.q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+o.s.d.lockHead).
		Scan(&headSeq, &headHash); err != nil {
		return nil, fmt.Errorf("store: read audit chain head: %w", err)
	}

	var query strings.Builder
	query.WriteString(`INSERT INTO audit_log (` + auditColumns + `) VALUES `)
	args := make([]any, 0, len(recs)*auditInsertColumns)
	out := make([]AuditRecord, len(recs))
	for i, rec := range recs {
		rec.Seq = headSeq + 1
		rec.PrevHash = headHash
		rec.Hash = rec.ComputeHash()
		headSeq, headHash = rec.Seq, rec.Hash
		out[i] = rec

		if i > 0 {
			query.WriteString(", ")
		}
		query.WriteString("(")
		for c := range auditInsertColumns {
			if c > 0 {
				query.WriteString(", ")
			}
			fmt.Fprintf(&query, "$%d", len(args)+c+1)
		}
		query.WriteString(")")
		args = append(args, rec.Seq, micros(rec.Time), string(rec.Action), rec.Requester, rec.TEE, rec.EvidenceDigest,
			rec.PolicyDigest, rec.Verdict, rec.Resource, rec.Reason, []byte(rec.PrevHash), []byte(rec.Hash), rec.RequestID, rec.TokenID, rec.Devices)
	}

	if _, err := o.q.ExecContext(ctx, query.String(), args...); err != nil {
		return nil, fmt.Errorf("store: insert audit records %d to %d: %w", out[0].Seq, headSeq, err)
	}
	head := auditHead{seq: headSeq, hash: headHash}
	if o.inTx {
		o.head = &head
		return out, nil
	}
	if err := o.writeAuditHead(ctx, head); err != nil {
		return nil, err
	}
	return out, nil
}

// writeAuditHead stores head as the audit chain head.
func (o *ops) writeAuditHead(ctx context.Context, head auditHead) error {
	if _, err := o.q.ExecContext(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, head.seq, head.hash); err != nil {
		return fmt.Errorf("store: update audit chain head: %w", err)
	}
	return nil
}

// auditFirstColumns are the audit_log columns that the first migration
// creates, and auditColumns are all of them: these and auditAddedColumns.
const (
	auditFirstColumns = `seq, time, action, requester, tee, evidence_digest, policy_digest, verdict, resource, reason, prev_hash, hash`
	auditColumns      = auditFirstColumns + `, request_id, token_id, devices`
)

// Versions of the migrations that add columns to audit_log.
const (
	auditRequestIDMigration = 5
	auditTokenIDMigration   = 6
	auditDevicesMigration   = 7
)

// auditAddedColumns are the audit_log columns that migrations after the
// first added, each with the version of its migration. A database opened
// without migrating it, as cloister audit verify opens it, may lack them.
var auditAddedColumns = [...]struct {
	name      string
	migration int64
}{
	{name: "request_id", migration: auditRequestIDMigration},
	{name: "token_id", migration: auditTokenIDMigration},
	{name: "devices", migration: auditDevicesMigration},
}

func scanAudit(row scanner) (AuditRecord, error) {
	var (
		r              AuditRecord
		t              int64
		action         string
		prevHash, hash []byte
	)
	err := row.Scan(&r.Seq, &t, &action, &r.Requester, &r.TEE, &r.EvidenceDigest, &r.PolicyDigest,
		&r.Verdict, &r.Resource, &r.Reason, &prevHash, &hash, &r.RequestID, &r.TokenID, &r.Devices)
	r.Time = fromMicros(t)
	r.Action = AuditAction(action)
	r.PrevHash, r.Hash = prevHash, hash
	return r, err
}

func (o *ops) ListAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	return o.listAudit(ctx, q, auditColumns)
}

// listAudit runs ListAudit with columns as the select list, which is
// auditColumns or what auditSelectColumns returns.
func (o *ops) listAudit(ctx context.Context, q AuditQuery, columns string) ([]AuditRecord, error) {
	query, args := auditListQuery(q, columns)
	rows, err := o.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list audit records: %w", err)
	}
	defer rows.Close()

	var list []AuditRecord
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list audit records: %w", err)
		}
		list = append(list, r)
	}
	return list, rows.Err()
}

// auditListQuery returns the SELECT statement of ListAudit and its
// arguments.
func auditListQuery(q AuditQuery, columns string) (string, []any) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	query := `SELECT ` + columns + ` FROM audit_log WHERE seq > $1 AND ($2 = '' OR action = $2)`
	args := []any{q.AfterSeq, string(q.Action)}
	if q.TokenID != "" {
		// The second condition repeats the predicate of the partial index
		// audit_log_token_id, because SQLite, and PostgreSQL in a generic
		// plan, use that index only when the query states it.
		query += ` AND token_id = $3 AND token_id <> ''`
		args = append(args, q.TokenID)
	}
	query += fmt.Sprintf(` ORDER BY seq LIMIT $%d`, len(args)+1)
	return query, append(args, limit)
}

func (s *sqlStore) AuditHead(ctx context.Context) (AuditHead, error) {
	var head AuditHead
	var hash []byte
	if err := s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head.Seq, &hash); err != nil {
		return AuditHead{}, fmt.Errorf("store: read audit chain head: %w", err)
	}
	head.Hash = hash
	return head, nil
}

// verifyPage is how many records VerifyAudit reads per query, so that a
// long chain is never held in memory or in one long-running read.
const verifyPage = 5000

func (s *sqlStore) VerifyAudit(ctx context.Context) (AuditVerification, error) {
	// The head is read first: every record up to it has committed, because
	// a record and the head update share a transaction. Records appended
	// during the walk lie beyond it and are left for the next run.
	var headSeq int64
	var headHash []byte
	if err := s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash); err != nil {
		return AuditVerification{}, fmt.Errorf("store: read audit chain head: %w", err)
	}
	// The schema is read after the head. Any record up to the head that
	// has a request ID, a token ID or devices was committed after the
	// migration that adds its column, so this read finds that migration
	// applied.
	columns, err := s.auditSelectColumns(ctx)
	if err != nil {
		return AuditVerification{}, err
	}

	var v AuditVerification
	prev := make([]byte, sha256.Size)
	var last int64
walk:
	for last < headSeq {
		page, err := s.autocommit().listAudit(ctx, AuditQuery{AfterSeq: last, Limit: verifyPage}, columns)
		if err != nil {
			return v, err
		}
		for i := range page {
			r := &page[i]
			if r.Seq > headSeq {
				break walk
			}
			if brk := checkAuditRecord(r, last+1, prev); brk != nil {
				v.Broken = brk
				return v, nil
			}
			v.Records++
			prev, last = r.Hash, r.Seq
		}
		if len(page) < verifyPage {
			break
		}
	}

	// The head catches records deleted from the end of the chain, which
	// the walk alone cannot see.
	switch {
	case last != headSeq:
		v.Broken = &AuditBreak{Seq: headSeq, Stored: headHash, Computed: prev,
			Reason: fmt.Sprintf("chain head names record %d, but the log ends at record %d: records were removed from the end", headSeq, last)}
		return v, nil
	case !bytes.Equal(headHash, prev):
		v.Broken = &AuditBreak{Seq: headSeq, Stored: headHash, Computed: prev,
			Reason: fmt.Sprintf("chain head hash differs from the hash of record %d: the head row was modified", last)}
		return v, nil
	}
	if brk, err := s.checkNothingPastHead(ctx); err != nil || brk != nil {
		v.Broken = brk
		return v, err
	}
	if brk, err := s.checkSecretVersions(ctx); err != nil || brk != nil {
		v.Broken = brk
		return v, err
	}
	v.Head = prev
	return v, nil
}

// checkNothingPastHead reports the first record past the chain head. Every
// append moves the head in the transaction that inserts its records, so
// such a record was inserted into the table directly, and audit ls would
// list it although no walk from the head covers it. One statement reads
// the head and the records, so records that appends commit meanwhile are
// never mistaken for it.
func (s *sqlStore) checkNothingPastHead(ctx context.Context) (*AuditBreak, error) {
	var (
		headSeq int64
		past    sql.NullInt64
	)
	if err := s.db.QueryRowContext(ctx,
		`SELECT h.seq, (SELECT MIN(l.seq) FROM audit_log l WHERE l.seq > h.seq) FROM audit_head h WHERE h.id = 1`).
		Scan(&headSeq, &past); err != nil {
		return nil, fmt.Errorf("store: look for audit records past the chain head: %w", err)
	}
	if !past.Valid {
		return nil, nil
	}
	return &AuditBreak{Seq: past.Int64, Reason: fmt.Sprintf(
		"record %d lies past the chain head at record %d: it was inserted into the database directly, because every append moves the head",
		past.Int64, headSeq)}, nil
}

// auditSelectColumns returns the select list for audit records that the
// database's schema supports: auditColumns, with the empty string in
// place of each column in auditAddedColumns whose migration is not
// applied. A database opened with SkipMigrations may still lack such a
// column.
func (s *sqlStore) auditSelectColumns(ctx context.Context) (string, error) {
	applied, err := appliedVersions(ctx, s.db)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	columns := auditFirstColumns
	for _, c := range auditAddedColumns {
		if applied[c.migration] {
			columns += ", " + c.name
		} else {
			columns += ", '' AS " + c.name
		}
	}
	return columns, nil
}

// checkAuditRecord compares r with the sequence number and link it must
// have and with its recomputed hash.
func checkAuditRecord(r *AuditRecord, wantSeq int64, prev []byte) *AuditBreak {
	if r.Seq != wantSeq {
		return &AuditBreak{Seq: wantSeq, Reason: fmt.Sprintf("record %d is missing: the next stored record is %d", wantSeq, r.Seq)}
	}
	if !bytes.Equal(r.PrevHash, prev) {
		return &AuditBreak{Seq: r.Seq, Stored: r.PrevHash, Computed: prev,
			Reason: fmt.Sprintf("record %d: stored previous hash does not match the hash of record %d", r.Seq, r.Seq-1)}
	}
	computed := r.ComputeHash()
	if !bytes.Equal(r.Hash, computed) {
		return &AuditBreak{Seq: r.Seq, Stored: r.Hash, Computed: computed,
			Reason: fmt.Sprintf("record %d: stored hash does not match the hash of its content; the record was modified", r.Seq)}
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
