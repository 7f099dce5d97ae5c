package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/store"
)

// brokenTxStore fails every transaction with an error the admin API does
// not classify, as a lost database connection would.
type brokenTxStore struct{ store.Store }

func (brokenTxStore) Tx(context.Context, func(store.Tx) error) error {
	return errors.New("connection reset by peer")
}

func TestRejectedChangesAudited(t *testing.T) {
	base := newTestStore(t)
	tests := []struct {
		name     string
		store    store.Store
		method   string
		path     string
		status   int
		verdict  string // "" when no record is expected
		resource string
		reason   string
	}{
		{name: "unknown route", store: base, method: http.MethodPost, path: "secrets-typo/a",
			status: http.StatusNotFound, verdict: "rejected", resource: "POST " + PathPrefix + "secrets-typo/a",
			reason: "no admin endpoint for POST"},
		{name: "store failure", store: brokenTxStore{base}, method: http.MethodPut, path: "secrets/default/key/a",
			status: http.StatusInternalServerError, verdict: "failed", resource: "PUT " + PathPrefix + "secrets/default/key/a",
			reason: "the server log has the cause"},
		{name: "failed read", store: base, method: http.MethodGet, path: "audit?limit=abc",
			status: http.StatusBadRequest},
		{name: "unknown read", store: base, method: http.MethodGet, path: "no-such-endpoint",
			status: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestServer(t, Config{APIKey: testKey, Store: tt.store})
			before, err := base.ListAudit(context.Background(), store.AuditQuery{})
			if err != nil {
				t.Fatal(err)
			}

			req, err := http.NewRequest(tt.method, srv.URL+PathPrefix+tt.path, strings.NewReader("value"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testKey)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}

			after, err := base.ListAudit(context.Background(), store.AuditQuery{})
			if err != nil {
				t.Fatal(err)
			}
			added := after[len(before):]
			if tt.verdict == "" {
				if len(added) != 0 {
					t.Fatalf("records added = %+v, want none for a read", added)
				}
				return
			}
			if len(added) != 1 {
				t.Fatalf("records added = %+v, want one", added)
			}
			rec := added[0]
			if rec.Action != store.AuditAdmin || rec.Verdict != tt.verdict || rec.Requester != "api-key" {
				t.Errorf("record = %+v, want an admin record of api-key with verdict %s", rec, tt.verdict)
			}
			if rec.Resource != tt.resource {
				t.Errorf("resource = %q, want %q", rec.Resource, tt.resource)
			}
			if !strings.Contains(rec.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", rec.Reason, tt.reason)
			}
		})
	}
}
