package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// fieldHex returns the hex of s as the canonical encoding writes a text
// field: a big-endian uint32 length and the bytes.
func fieldHex(s string) string {
	return hex.EncodeToString(appendField(nil, s))
}

func TestAuditEncodingOptionalFields(t *testing.T) {
	const requestID, tokenID = "3f2a9c0d1e4b5a67", "9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
	withToken := v1Record
	withToken.TokenID = tokenID
	withBoth := withToken
	withBoth.RequestID = requestID
	withRequest := v1Record
	withRequest.RequestID = requestID
	withDevices := v1Record
	withDevices.Devices = testDevices
	withTokenAndDevices := withToken
	withTokenAndDevices.Devices = testDevices
	withAll := withBoth
	withAll.Devices = testDevices
	tests := []struct {
		name     string
		rec      AuditRecord
		encoding string
	}{
		{name: "request ID only as before", rec: withRequest, encoding: v1Encoding + fieldHex(requestID)},
		{name: "token ID after empty request ID", rec: withToken, encoding: v1Encoding + fieldHex("") + fieldHex(tokenID)},
		{name: "token ID after request ID", rec: withBoth, encoding: v1Encoding + fieldHex(requestID) + fieldHex(tokenID)},
		{name: "devices after empty IDs", rec: withDevices, encoding: v1Encoding + fieldHex("") + fieldHex("") + fieldHex(testDevices)},
		{name: "devices after token ID", rec: withTokenAndDevices,
			encoding: v1Encoding + fieldHex("") + fieldHex(tokenID) + fieldHex(testDevices)},
		{name: "devices after both IDs", rec: withAll,
			encoding: v1Encoding + fieldHex(requestID) + fieldHex(tokenID) + fieldHex(testDevices)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(tt.rec.CanonicalEncoding()); got != tt.encoding {
				t.Errorf("CanonicalEncoding =\n%s\nwant\n%s", got, tt.encoding)
			}
		})
	}

	// The same value in another optional field, or in a record with other
	// optional fields set, must hash differently.
	requestAsToken := v1Record
	requestAsToken.TokenID = requestID
	devicesAsToken := v1Record
	devicesAsToken.TokenID = testDevices
	checkHashesDistinct(t, map[string]AuditRecord{"no optional fields": v1Record, "request ID": withRequest,
		"token ID": withToken, "both IDs": withBoth, "request ID value as token ID": requestAsToken,
		"devices": withDevices, "token ID and devices": withTokenAndDevices, "all": withAll,
		"devices value as token ID": devicesAsToken})
}

// checkHashesDistinct reports each pair of records, named by the keys of
// records, that have the same hash.
func checkHashesDistinct(t *testing.T, records map[string]AuditRecord) {
	t.Helper()
	hashes := map[string]string{}
	for name, rec := range records {
		h := hex.EncodeToString(rec.ComputeHash())
		if other, ok := hashes[h]; ok {
			t.Errorf("records with %s and with %s have the same hash %s", name, other, h)
		}
		hashes[h] = name
	}
}

// appendTokenMixed appends records through every append path. Record i
// has no IDs when i%4 is 0, a request ID when it is 1, a token ID when it
// is 2 and both when it is 3.
func appendTokenMixed(t *testing.T, s *sqlStore) []AuditRecord {
	t.Helper()
	return appendEveryPath(t, s, func(i int) AuditRecord {
		rec := AuditRecord{Action: AuditAttest, Requester: "session:abc", Verdict: "affirming"}
		if i%2 == 1 {
			rec.RequestID = fmt.Sprintf("req-%02d", i)
		}
		if i%4 >= 2 {
			rec.TokenID = fmt.Sprintf("tok-%02d", i)
		}
		return rec
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

func TestAuditVerifiesAcrossTokenIDMigration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s, appended := testVerifiesAcrossMigration(t, b, auditTokenIDMigration, "token_id", appendTokenMixed)

		// The listing by token ID finds the one new record with that ID.
		want := appended[2]
		list, err := s.ListAudit(context.Background(), AuditQuery{TokenID: want.TokenID})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 {
			t.Fatalf("ListAudit by token ID %s returned %+v, want record %d only", want.TokenID, list, want.Seq)
		}
		if list[0].Seq != want.Seq {
			t.Errorf("ListAudit by token ID %s returned record %d, want %d", want.TokenID, list[0].Seq, want.Seq)
		}
	})
}
