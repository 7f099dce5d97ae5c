package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/cloister-dev/cloister/store"
)

func TestListAuditByTokenIDThroughClient(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for _, rec := range []store.AuditRecord{
			{Action: store.AuditAttest, Requester: "session:aaaa", TokenID: "tok-a"},
			{Action: store.AuditAttest, Requester: "session:bbbb", TokenID: "tok-b"},
			{Action: store.AuditRelease, Requester: "token:tok-a", TokenID: "tok-a", Resource: "default/key/db"},
		} {
			if _, err := s.AppendAudit(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		srv, _ := newTestServer(t, Config{APIKey: testKey, Store: s})
		c := &Client{BaseURL: srv.URL, APIKey: testKey, HTTPClient: srv.Client()}

		records, err := c.ListAudit(ctx, store.AuditQuery{TokenID: "tok-a"})
		if err != nil {
			t.Fatalf("ListAudit: %v", err)
		}
		if len(records) != 2 {
			t.Fatalf("ListAudit by token ID tok-a returned %d records, want 2: %+v", len(records), records)
		}
		for i, want := range []store.AuditAction{store.AuditAttest, store.AuditRelease} {
			if records[i].Action != want || records[i].TokenID != "tok-a" {
				t.Errorf("record %d: action %s, token ID %q; want %s, tok-a", i, records[i].Action, records[i].TokenID, want)
			}
		}

		// The JSON of the listing names the field token_id.
		status, body := sendWithToken(t, srv, http.MethodGet, PathPrefix+"audit?token_id=tok-b", testKey, nil)
		if status != http.StatusOK {
			t.Fatalf("GET audit?token_id=tok-b: status %d, body %s", status, body)
		}
		var list struct {
			Records []map[string]any `json:"records"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatalf("decode audit listing %s: %v", body, err)
		}
		if len(list.Records) != 1 || list.Records[0]["token_id"] != "tok-b" {
			t.Errorf("GET audit?token_id=tok-b returned %s, want one record with token_id tok-b", body)
		}
	})
}
