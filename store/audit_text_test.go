package store

import (
	"context"
	"strings"
	"testing"
)

// Audit fields often quote request input, such as a decoded URL path or a
// verifier's error about evidence bytes. PostgreSQL TEXT rejects NUL and
// invalid UTF-8, so the append methods replace them, in both backends, and
// the record is stored and hashed as it was appended.
func TestAuditStoresUnstorableText(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{name: "NUL", value: "GET /admin/a\x00b", want: "GET /admin/a\uFFFDb"},
		{name: "invalid UTF-8", value: "GET /admin/a\xffb", want: "GET /admin/a\uFFFDb"},
		{name: "truncated sequence", value: "café\xc3", want: "café\uFFFD"},
		{name: "valid text", value: "GET /admin/ünïcode", want: "GET /admin/ünïcode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b testBackend) {
				ctx := context.Background()
				s := open(t, b.config())

				appended, err := s.AppendAudit(ctx, AuditRecord{Action: AuditDeny, Resource: tt.value, RequestID: tt.value})
				if err != nil {
					t.Fatalf("AppendAudit: %v", err)
				}
				if appended.Resource != tt.want {
					t.Errorf("appended resource %q, want %q", appended.Resource, tt.want)
				}
				grouped, err := s.AppendAuditGrouped(ctx, AuditRecord{Action: AuditDeny, Reason: tt.value, Devices: tt.value})
				if err != nil {
					t.Fatalf("AppendAuditGrouped: %v", err)
				}
				if grouped.Reason != tt.want {
					t.Errorf("grouped reason %q, want %q", grouped.Reason, tt.want)
				}

				stored := mustRecord(t, s, appended.Seq)
				if stored.Resource != tt.want {
					t.Errorf("stored resource %q, want %q", stored.Resource, tt.want)
				}
				if stored.RequestID != tt.want {
					t.Errorf("stored request ID %q, want %q", stored.RequestID, tt.want)
				}
				stored = mustRecord(t, s, grouped.Seq)
				if stored.Reason != tt.want {
					t.Errorf("stored reason %q, want %q", stored.Reason, tt.want)
				}
				if stored.Devices != tt.want {
					t.Errorf("stored devices %q, want %q", stored.Devices, tt.want)
				}

				v, err := s.VerifyAudit(ctx)
				if err != nil {
					t.Fatalf("VerifyAudit: %v", err)
				}
				if v.Broken != nil {
					t.Errorf("VerifyAudit reports a break: %+v", v.Broken)
				}
				if v.Records != 2 {
					t.Errorf("VerifyAudit checked %d records, want 2", v.Records)
				}
			})
		})
	}
}

// A record that PostgreSQL would reject must not fail the other records of
// its group-commit batch.
func TestAuditGroupBatchWithUnstorableText(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())

		reasons := []string{"ok 1", "bad \x00", "ok 2", "bad \xfe"}
		errs := make(chan error, len(reasons))
		for _, reason := range reasons {
			go func() {
				_, err := s.AppendAuditGrouped(ctx, AuditRecord{Action: AuditDeny, Reason: reason})
				errs <- err
			}()
		}
		for range reasons {
			if err := <-errs; err != nil {
				t.Errorf("AppendAuditGrouped: %v", err)
			}
		}
		list, err := s.ListAudit(ctx, AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(reasons) {
			t.Errorf("%d records stored, want %d", len(list), len(reasons))
		}
		for _, r := range list {
			if strings.ContainsRune(r.Reason, 0) {
				t.Errorf("record %d: stored reason %q contains NUL", r.Seq, r.Reason)
			}
		}
	})
}
