package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloister-dev/cloister/admin"
	"github.com/cloister-dev/cloister/store"
)

// VerifyAudit reads the secret versions from the records that the admin
// API appends, so this test runs the real API: a change to its audit
// reasons fails here.
func TestVerifyAuditAdminDeletedVersions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw := make([]byte, store.MasterKeySize)
	rand.Read(raw)
	mk, err := store.NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{DataDir: dir, MasterKey: mk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	const apiKey = "admin-key-for-the-secret-version-test"
	h, err := admin.NewHandler(admin.Config{Store: st, APIKey: apiKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(admin.PathPrefix, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &admin.Client{BaseURL: srv.URL, APIKey: apiKey}

	for _, v := range []string{"revoked", "current"} {
		if _, err := client.PutSecret(ctx, "default/key/signing", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.PutSecret(ctx, "default/key/gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteSecret(ctx, "default/key/gone"); err != nil {
		t.Fatal(err)
	}
	v, err := st.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Broken != nil {
		t.Fatalf("VerifyAudit before the deletion reports a break: %+v", v.Broken)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, store.SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM secrets WHERE path = 'default/key/signing' AND version = 2`); err != nil {
		t.Fatal(err)
	}
	v, err = st.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Broken == nil {
		t.Fatal("VerifyAudit after deleting the newest version reports an intact chain")
	}
	for _, part := range []string{"default/key/signing version 2", "newest stored version is 1"} {
		if !strings.Contains(v.Broken.Reason, part) {
			t.Errorf("break reason %q does not contain %q", v.Broken.Reason, part)
		}
	}
}
