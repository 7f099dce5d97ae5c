package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSecretRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := openWithKey(t, b)
		plaintext := []byte("plaintext-marker-7f3a9c: the disk encryption key")

		info, err := s.PutSecret(ctx, "default/key/disk", plaintext)
		if err != nil {
			t.Fatalf("PutSecret: %v", err)
		}
		if info.Version != 1 || info.Size != len(plaintext) || info.MasterKeyID != s.cfg.MasterKey.ID() {
			t.Errorf("PutSecret info = %+v", info)
		}

		got, err := s.GetSecret(ctx, "default/key/disk")
		if err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
		if !bytes.Equal(got.Value, plaintext) {
			t.Errorf("GetSecret value = %q, want %q", got.Value, plaintext)
		}

		second := []byte("second version")
		info, err = s.PutSecret(ctx, "default/key/disk", second)
		if err != nil {
			t.Fatalf("PutSecret second version: %v", err)
		}
		if info.Version != 2 {
			t.Errorf("second version number = %d, want 2", info.Version)
		}
		got, err = s.GetSecret(ctx, "default/key/disk")
		if err != nil {
			t.Fatalf("GetSecret after second put: %v", err)
		}
		if !bytes.Equal(got.Value, second) {
			t.Errorf("GetSecret returned %q, want the latest version %q", got.Value, second)
		}

		if _, err := s.PutSecret(ctx, "other/cert/tls", []byte("x")); err != nil {
			t.Fatalf("PutSecret: %v", err)
		}
		list, err := s.ListSecrets(ctx, "default/")
		if err != nil {
			t.Fatalf("ListSecrets: %v", err)
		}
		if len(list) != 1 || list[0].Path != "default/key/disk" || list[0].Version != 2 {
			t.Errorf("ListSecrets(default/) = %+v, want one entry default/key/disk version 2", list)
		}
		all, err := s.ListSecrets(ctx, "")
		if err != nil {
			t.Fatalf("ListSecrets: %v", err)
		}
		if len(all) != 2 {
			t.Errorf("ListSecrets(\"\") returned %d entries, want 2", len(all))
		}

		assertNoPlaintextInDatabase(t, s, s.cfg, plaintext)

		if err := s.DeleteSecret(ctx, "default/key/disk"); err != nil {
			t.Fatalf("DeleteSecret: %v", err)
		}
		if _, err := s.GetSecret(ctx, "default/key/disk"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSecret after delete: err = %v, want ErrNotFound", err)
		}
		if err := s.DeleteSecret(ctx, "default/key/disk"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteSecret: err = %v, want ErrNotFound", err)
		}
	})
}

// assertNoPlaintextInDatabase checks the stored columns and, for SQLite,
// every byte of the database and WAL files.
func assertNoPlaintextInDatabase(t *testing.T, s *sqlStore, cfg Config, plaintext []byte) {
	t.Helper()
	rows, err := s.db.Query(`SELECT ciphertext, wrapped_key FROM secrets`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ct, wk []byte
		if err := rows.Scan(&ct, &wk); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ct, plaintext) || bytes.Contains(wk, plaintext) {
			t.Error("a stored ciphertext contains the plaintext")
		}
	}

	if cfg.DataDir == "" {
		return
	}
	for _, name := range []string{SQLiteFile, SQLiteFile + "-wal"} {
		content, err := os.ReadFile(filepath.Join(cfg.DataDir, name))
		if err != nil {
			continue
		}
		if bytes.Contains(content, plaintext) {
			t.Errorf("%s contains the plaintext", name)
		}
		if bytes.Contains(content, cfg.MasterKey.key) {
			t.Errorf("%s contains the master key", name)
		}
	}
}

func TestSecretWrongMasterKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		oldKey, newKey := testMasterKey(t), testMasterKey(t)

		cfg := b.config()
		cfg.MasterKey = oldKey
		s := open(t, cfg)
		if _, err := s.PutSecret(ctx, "default/key/a", []byte("value a")); err != nil {
			t.Fatalf("PutSecret: %v", err)
		}

		cfg = b.config()
		cfg.MasterKey = newKey
		wrong := open(t, cfg)
		_, err := wrong.GetSecret(ctx, "default/key/a")
		if !errors.Is(err, ErrDecrypt) {
			t.Fatalf("GetSecret with another master key: err = %v, want ErrDecrypt", err)
		}

		if _, err := wrong.RewrapSecrets(ctx); !errors.Is(err, ErrDecrypt) {
			t.Errorf("RewrapSecrets without the old key: err = %v, want ErrDecrypt", err)
		}

		cfg.OldMasterKeys = []*MasterKey{oldKey}
		rotated := open(t, cfg)
		got, err := rotated.GetSecret(ctx, "default/key/a")
		if err != nil {
			t.Fatalf("GetSecret with the old key configured: %v", err)
		}
		if string(got.Value) != "value a" {
			t.Errorf("GetSecret = %q, want %q", got.Value, "value a")
		}

		// After rewrapping, the new key alone opens the secret.
		n, err := rotated.RewrapSecrets(ctx)
		if err != nil || n != 1 {
			t.Fatalf("RewrapSecrets = %d, %v; want 1 rewrapped", n, err)
		}
		records, err := rotated.ListAudit(ctx, AuditQuery{Action: AuditAdmin})
		if err != nil || len(records) != 1 {
			t.Errorf("after RewrapSecrets: %d admin audit records, err %v; want 1", len(records), err)
		}
		cfg.OldMasterKeys = nil
		newOnly := open(t, cfg)
		got, err = newOnly.GetSecret(ctx, "default/key/a")
		if err != nil {
			t.Fatalf("GetSecret with only the new key after rewrap: %v", err)
		}
		if string(got.Value) != "value a" || got.MasterKeyID != newKey.ID() {
			t.Errorf("after rewrap: value %q, key %s; want %q, %s", got.Value, got.MasterKeyID, "value a", newKey.ID())
		}
	})
}

// A service with another master key cannot add secrets to a store whose
// secrets it cannot open, so that replicas with different keys do not
// split the secrets between them. With the old key configured, as during
// a rotation, it can.
func TestSecretPutUnderOtherMasterKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		first, second := testMasterKey(t), testMasterKey(t)
		cfg := b.config()
		cfg.MasterKey = first
		if _, err := open(t, cfg).PutSecret(ctx, "default/key/a", []byte("value a")); err != nil {
			t.Fatalf("PutSecret: %v", err)
		}

		cfg.MasterKey = second
		other := open(t, cfg)
		_, err := other.PutSecret(ctx, "default/key/b", []byte("value b"))
		if !errors.Is(err, ErrForeignSecrets) {
			t.Fatalf("PutSecret under another master key: err = %v, want ErrForeignSecrets", err)
		}
		for _, part := range []string{first.ID(), second.ID(), "--master-key-file", "cloister secret rewrap"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not contain %q", err, part)
			}
		}
		if _, err := other.GetSecret(ctx, "default/key/b"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSecret of the rejected secret: err = %v, want ErrNotFound", err)
		}

		cfg.OldMasterKeys = []*MasterKey{first}
		if _, err := open(t, cfg).PutSecret(ctx, "default/key/b", []byte("value b")); err != nil {
			t.Errorf("PutSecret with the old key configured: %v", err)
		}
	})
}

// Services with different master keys that store the first secrets of an
// empty store at the same moment do not both succeed: the store ends with
// secrets under one key only.
func TestSecretConcurrentPutsUnderTwoKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		stores := make([]Store, 2)
		for i := range stores {
			cfg := b.config()
			cfg.MasterKey = testMasterKey(t)
			stores[i] = open(t, cfg)
		}

		const rounds = 10
		errs := make([]error, 2*rounds)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = stores[i%2].PutSecret(ctx, fmt.Sprintf("default/key/s%d", i), []byte("value"))
			})
		}
		wg.Wait()

		list, err := stores[0].ListSecrets(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for _, info := range list {
			keys[info.MasterKeyID] = true
		}
		if len(keys) != 1 {
			t.Errorf("stored secrets are sealed under %d master keys, want 1", len(keys))
		}
		for i, err := range errs {
			if err != nil && !errors.Is(err, ErrForeignSecrets) {
				t.Errorf("put %d: %v, want success or ErrForeignSecrets", i, err)
			}
		}
	})
}

func TestSecretMovedCiphertextFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := openWithKey(t, b)
		for _, p := range []string{"default/key/a", "default/key/b"} {
			if _, err := s.PutSecret(ctx, p, []byte("value of "+p)); err != nil {
				t.Fatalf("PutSecret %s: %v", p, err)
			}
		}

		// Copy a's sealed value and wrapped key over b's: the path is in
		// the additional data of both seals, so b must no longer open.
		if _, err := s.db.Exec(`UPDATE secrets SET
			ciphertext = (SELECT ciphertext FROM secrets WHERE path = 'default/key/a'),
			wrapped_key = (SELECT wrapped_key FROM secrets WHERE path = 'default/key/a')
			WHERE path = 'default/key/b'`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSecret(ctx, "default/key/b"); !errors.Is(err, ErrDecrypt) {
			t.Errorf("GetSecret of moved ciphertext: err = %v, want ErrDecrypt", err)
		}
	})
}

func TestSecretPathValidation(t *testing.T) {
	for _, p := range []string{"", "a", "a/b", "a/b/c/d", "a//c", "a/../c", "a/b/c d", "a/b/ü", "default/.key/db"} {
		if err := ValidateResourcePath(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateResourcePath(%q) = %v, want ErrInvalid", p, err)
		}
	}
	for _, p := range []string{"default/key/disk", "my-repo/cert_chain/v1.2"} {
		if err := ValidateResourcePath(p); err != nil {
			t.Errorf("ValidateResourcePath(%q) = %v, want nil", p, err)
		}
	}
}

func TestSecretWithoutMasterKeyRejected(t *testing.T) {
	s := open(t, Config{DataDir: t.TempDir()})
	if _, err := s.PutSecret(context.Background(), "default/key/a", []byte("v")); err == nil {
		t.Error("PutSecret without a master key succeeded")
	}
}

// UnopenableSecrets lists the latest versions sealed under keys the store
// does not hold, and none once the old key is configured.
func TestUnopenableSecrets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		first, second := testMasterKey(t), testMasterKey(t)
		cfg := b.config()
		cfg.MasterKey = first
		sealer := open(t, cfg)
		for _, path := range []string{"default/key/b", "default/key/a", "default/key/a"} {
			if _, err := sealer.PutSecret(ctx, path, []byte("value")); err != nil {
				t.Fatalf("PutSecret %s: %v", path, err)
			}
		}
		if list, stored, err := sealer.UnopenableSecrets(ctx); err != nil || len(list) != 0 || stored != 2 {
			t.Fatalf("UnopenableSecrets with the sealing key = %+v, %d stored, %v; want none of 2", list, stored, err)
		}

		cfg.MasterKey = second
		list, stored, err := open(t, cfg).UnopenableSecrets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stored != 2 {
			t.Errorf("stored = %d, want 2", stored)
		}
		if len(list) != 2 || list[0].Path != "default/key/a" || list[0].Version != 2 || list[1].Path != "default/key/b" {
			t.Fatalf("UnopenableSecrets with another key = %+v, want default/key/a version 2 and default/key/b", list)
		}
		if list[0].MasterKeyID != first.ID() {
			t.Errorf("master key ID = %s, want %s", list[0].MasterKeyID, first.ID())
		}

		cfg.OldMasterKeys = []*MasterKey{first}
		if list, _, err := open(t, cfg).UnopenableSecrets(ctx); err != nil || len(list) != 0 {
			t.Errorf("UnopenableSecrets with the old key configured = %+v, %v; want none", list, err)
		}
	})
}
