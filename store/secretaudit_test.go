package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// putAudited stores value at path and appends the admin audit record that
// the admin API appends, in one transaction.
func putAudited(t *testing.T, s *sqlStore, path, value string) SecretInfo {
	t.Helper()
	var info SecretInfo
	err := s.Tx(context.Background(), func(tx Tx) error {
		var err error
		info, err = tx.PutSecret(context.Background(), path, []byte(value))
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(context.Background(), AuditRecord{Action: AuditAdmin, Requester: "test", Verdict: "applied",
			Resource: path, Reason: fmt.Sprintf("put secret version %d", info.Version)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// deleteAudited deletes the secret at path with the admin API's record.
func deleteAudited(t *testing.T, s *sqlStore, path string) {
	t.Helper()
	err := s.Tx(context.Background(), func(tx Tx) error {
		if err := tx.DeleteSecret(context.Background(), path); err != nil {
			return err
		}
		_, err := tx.AppendAudit(context.Background(), AuditRecord{Action: AuditAdmin, Requester: "test", Verdict: "applied",
			Resource: path, Reason: "deleted secret through the Trustee admin API"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerifyAuditSecretVersions(t *testing.T) {
	tests := []struct {
		name string
		// change runs after versions 1 to 3 of default/key/a and version
		// 1 of default/key/b were stored through the audited path.
		change func(t *testing.T, s *sqlStore)
		// wantParts is empty when the verification must pass.
		wantParts []string
	}{
		{name: "intact"},
		{
			name: "newest version deleted",
			change: func(t *testing.T, s *sqlStore) {
				mustExec(t, s, `DELETE FROM secrets WHERE path = 'default/key/a' AND version = 3`)
			},
			wantParts: []string{"record 3", "default/key/a version 3", "newest stored version is 2", "cloister secret put"},
		},
		{
			name: "every version deleted",
			change: func(t *testing.T, s *sqlStore) {
				mustExec(t, s, `DELETE FROM secrets WHERE path = 'default/key/b'`)
			},
			wantParts: []string{"record 4", "default/key/b version 1", "no version of it is stored"},
		},
		{
			name:   "deleted through the admin API",
			change: func(t *testing.T, s *sqlStore) { deleteAudited(t, s, "default/key/a") },
		},
		{
			name: "deleted and stored again",
			change: func(t *testing.T, s *sqlStore) {
				deleteAudited(t, s, "default/key/a")
				putAudited(t, s, "default/key/a", "a again")
			},
		},
		{
			name: "stored without an audit record",
			change: func(t *testing.T, s *sqlStore) {
				if _, err := s.PutSecret(context.Background(), "default/key/a", []byte("a4")); err != nil {
					t.Fatal(err)
				}
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b testBackend) {
				s := openWithKey(t, b)
				for _, v := range []string{"a1", "a2", "a3"} {
					putAudited(t, s, "default/key/a", v)
				}
				putAudited(t, s, "default/key/b", "b1")

				if tt.change != nil {
					tt.change(t, s)
				}

				v, err := s.VerifyAudit(context.Background())
				if err != nil {
					t.Fatalf("VerifyAudit: %v", err)
				}
				if len(tt.wantParts) == 0 {
					if v.Broken != nil {
						t.Errorf("VerifyAudit reports a break: %+v", v.Broken)
					}
					return
				}
				if v.Broken == nil {
					t.Fatalf("VerifyAudit reports an intact chain of %d records, want a break", v.Records)
				}
				for _, part := range tt.wantParts {
					if !strings.Contains(v.Broken.Reason, part) {
						t.Errorf("break reason %q does not contain %q", v.Broken.Reason, part)
					}
				}
				if v.Head != nil {
					t.Errorf("VerifyAudit reports head %x with a break", v.Head)
				}
			})
		})
	}
}

func TestAuditedPutVersion(t *testing.T) {
	tests := []struct {
		reason  string
		version int64
		ok      bool
	}{
		{"put secret version 3", 3, true},
		{"put secret version 12 through the Trustee admin API", 12, true},
		{"put secret version 0", 0, false},
		{"put secret version -1", 0, false},
		{"put secret version x", 0, false},
		{"put secret version +3", 0, false},
		{"put secret version 03", 0, false},
		{"put secret version ", 0, false},
		{"put policy version 3", 0, false},
		{"deleted secret", 0, false},
	}
	for _, tt := range tests {
		version, ok := auditedPutVersion(tt.reason)
		if ok != tt.ok {
			t.Errorf("auditedPutVersion(%q) ok = %v, want %v", tt.reason, ok, tt.ok)
		}
		if version != tt.version {
			t.Errorf("auditedPutVersion(%q) = %d, want %d", tt.reason, version, tt.version)
		}
	}
}

func mustExec(t *testing.T, s *sqlStore, query string) {
	t.Helper()
	if _, err := s.db.Exec(query); err != nil {
		t.Fatal(err)
	}
}
