package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"strings"
	"testing"
)

// legacyRow is a secret version as a release before the versioned seal
// format stored it.
type legacyRow struct {
	path       string
	version    int64
	ciphertext []byte
	wrappedKey []byte
}

// putLegacySecret stores value as version of path the way releases before
// migration 0008 did. The additional data names the path, and the master
// key ID for the data key, but not the version. The INSERT does not name
// the seal_format column. The labels are spelled out, so that a change to
// the current format's constants cannot change this one.
func putLegacySecret(t *testing.T, db *sql.DB, mk *MasterKey, path string, version int64, value []byte) legacyRow {
	t.Helper()
	dataKey := make([]byte, dataKeySize)
	rand.Read(dataKey)
	ciphertext, err := gcmSeal(dataKey, value, []byte("cloister secret value\x00"+path))
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := gcmSeal(mk.key, dataKey, []byte("cloister secret data key\x00"+mk.id+"\x00"+path))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO secrets (path, version, ciphertext, wrapped_key, master_key_id, size, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, path, version, ciphertext, wrapped, mk.ID(), len(value), int64(1))
	if err != nil {
		t.Fatalf("insert legacy secret %s version %d: %v", path, version, err)
	}
	return legacyRow{path: path, version: version, ciphertext: ciphertext, wrappedKey: wrapped}
}

// openSchema7 creates the database of b with the schema of migrations 0001
// to 0007, the last schema before the versioned seal format.
func openSchema7(t *testing.T, b testBackend) *sql.DB {
	t.Helper()
	db, d, err := openDatabase(b.config(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := ping(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := migrateUpTo(context.Background(), db, d, 0, 7); err != nil {
		t.Fatalf("migrate up to 0007: %v", err)
	}
	return db
}

// copySeal writes the sealed value and wrapped key of from into the row
// (path, version), with the given seal format.
func copySeal(t *testing.T, db *sql.DB, from legacyRow, path string, version int64, format int) {
	t.Helper()
	res, err := db.Exec(`UPDATE secrets SET ciphertext = $1, wrapped_key = $2, seal_format = $3 WHERE path = $4 AND version = $5`,
		from.ciphertext, from.wrappedKey, format, path, version)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("copy into %s version %d changed %d rows, want 1", path, version, n)
	}
}

// readRow returns the stored seal of (path, version).
func readRow(t *testing.T, db *sql.DB, path string, version int64) legacyRow {
	t.Helper()
	row := legacyRow{path: path, version: version}
	err := db.QueryRow(`SELECT ciphertext, wrapped_key FROM secrets WHERE path = $1 AND version = $2`, path, version).
		Scan(&row.ciphertext, &row.wrappedKey)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

// checkRejected asserts that GetSecret of path fails with ErrDecrypt and an
// error that contains each of parts.
func checkRejected(t *testing.T, s Store, path string, parts ...string) {
	t.Helper()
	got, err := s.GetSecret(context.Background(), path)
	if err == nil {
		t.Fatalf("GetSecret %s returned %q, want an error", path, got.Value)
	}
	if !errors.Is(err, ErrDecrypt) {
		t.Errorf("GetSecret %s: err = %v, want ErrDecrypt", path, err)
	}
	for _, part := range parts {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("GetSecret %s: error %q does not contain %q", path, err, part)
		}
	}
}

// checkValue asserts that GetSecret of path returns want.
func checkValue(t *testing.T, s Store, path string, want string) {
	t.Helper()
	got, err := s.GetSecret(context.Background(), path)
	if err != nil {
		t.Fatalf("GetSecret %s: %v", path, err)
	}
	if string(got.Value) != want {
		t.Errorf("GetSecret %s = %q, want %q", path, got.Value, want)
	}
}

// An older version's sealed value and wrapped key, copied into the newest
// version's row, must not open as the newest version.
func TestSecretOlderVersionCopyRejected(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := openWithKey(t, b)
		const path = "default/key/signing"
		for _, v := range []string{"revoked key", "current key"} {
			if _, err := s.PutSecret(ctx, path, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}

		if _, err := s.db.Exec(`UPDATE secrets SET
			ciphertext = (SELECT ciphertext FROM secrets WHERE path = $1 AND version = 1),
			wrapped_key = (SELECT wrapped_key FROM secrets WHERE path = $1 AND version = 1)
			WHERE path = $1 AND version = 2`, path); err != nil {
			t.Fatal(err)
		}
		checkRejected(t, s, path, path, "version 2", "cloister secret put")
	})
}

// Changing the seal_format column of a versioned row must not make it open
// under another format's rule.
func TestSecretSealFormatChangeRejected(t *testing.T) {
	for _, format := range []int{sealFormatLegacy, 3, 0} {
		t.Run(string(rune('0'+format)), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b testBackend) {
				s := openWithKey(t, b)
				const path = "default/key/format"
				if _, err := s.PutSecret(context.Background(), path, []byte("value")); err != nil {
					t.Fatal(err)
				}
				if _, err := s.db.Exec(`UPDATE secrets SET seal_format = $1`, format); err != nil {
					t.Fatal(err)
				}
				checkRejected(t, s, path, path, "version 1")
			})
		})
	}
}

// A database that a release before migration 0008 wrote opens, is
// converted to the versioned format, and still returns every secret. A
// legacy value copied into a converted row is then rejected.
func TestSecretUpgradeFromLegacyDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		mk := testMasterKey(t)
		db := openSchema7(t, b)
		revoked := putLegacySecret(t, db, mk, "default/key/a", 1, []byte("a revoked"))
		putLegacySecret(t, db, mk, "default/key/a", 2, []byte("a current"))
		putLegacySecret(t, db, mk, "default/key/b", 1, []byte("b current"))

		cfg := b.config()
		cfg.MasterKey = mk
		s := open(t, cfg)

		var legacy int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM secrets WHERE seal_format <> $1`, sealFormatVersioned).Scan(&legacy); err != nil {
			t.Fatal(err)
		}
		if legacy != 0 {
			t.Errorf("%d secret versions are not in the versioned format after Open, want 0", legacy)
		}
		checkValue(t, s, "default/key/a", "a current")
		checkValue(t, s, "default/key/b", "b current")

		records, err := s.ListAudit(ctx, AuditQuery{Action: AuditAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != 1 || !strings.Contains(records[0].Reason, "converted 3 secret versions") {
			t.Errorf("admin audit records after the conversion = %+v, want one that names 3 converted versions", records)
		}

		// The converted row of version 2 now rejects the legacy value of
		// version 1, whichever format the row claims.
		for _, format := range []int{sealFormatLegacy, sealFormatVersioned} {
			copySeal(t, s.db, revoked, "default/key/a", 2, format)
			checkRejected(t, s, "default/key/a", "default/key/a", "version 2", "cloister secret put")
		}

		// Reopening does not convert the legacy value, because the other
		// rows are in the versioned format.
		copySeal(t, s.db, revoked, "default/key/a", 2, sealFormatLegacy)
		again := open(t, cfg)
		checkRejected(t, again, "default/key/a", "default/key/a", "version 2", "legacy", "older Cloister release")

		if _, err := s.PutSecret(ctx, "default/key/a", []byte("a restored")); err != nil {
			t.Fatalf("PutSecret after the rejected copy: %v", err)
		}
		checkValue(t, s, "default/key/a", "a restored")
	})
}

// A legacy database whose secrets are wrapped by a master key that the
// store lacks is not converted, and its values are not released, until the
// store is opened with that key too.
func TestSecretUpgradeNeedsEveryMasterKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		current, other := testMasterKey(t), testMasterKey(t)
		db := openSchema7(t, b)
		putLegacySecret(t, db, current, "default/key/mine", 1, []byte("mine"))
		putLegacySecret(t, db, other, "default/key/theirs", 1, []byte("theirs"))

		cfg := b.config()
		cfg.MasterKey = current
		s := open(t, cfg)
		checkRejected(t, s, "default/key/mine", "default/key/mine", "version 1", "legacy", "cloister secret rewrap")

		_, err := s.RewrapSecrets(ctx)
		if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), other.ID()) {
			t.Errorf("RewrapSecrets without the other key: err = %v, want ErrDecrypt naming %s", err, other.ID())
		}

		cfg.OldMasterKeys = []*MasterKey{other}
		rotated := open(t, cfg)
		checkValue(t, rotated, "default/key/mine", "mine")
		checkValue(t, rotated, "default/key/theirs", "theirs")
		n, err := rotated.RewrapSecrets(ctx)
		if err != nil {
			t.Fatalf("RewrapSecrets after the conversion: %v", err)
		}
		if n != 0 {
			t.Errorf("RewrapSecrets after the conversion rewrapped %d, want 0", n)
		}
	})
}

// RewrapSecrets converts a legacy store that Open did not convert, and
// counts the converted versions.
func TestRewrapConvertsLegacySecrets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		mk := testMasterKey(t)
		s := open(t, b.config()) // no master key, so Open converts nothing
		putLegacySecret(t, s.db, mk, "default/key/a", 1, []byte("a"))
		putLegacySecret(t, s.db, mk, "default/key/b", 1, []byte("b"))

		cfg := b.config()
		cfg.MasterKey = mk
		withKey := open(t, cfg) // converts both
		n, err := withKey.RewrapSecrets(ctx)
		if err != nil || n != 0 {
			t.Errorf("RewrapSecrets after Open converted: n = %d, err = %v; want 0, nil", n, err)
		}

		// Rows that an older release wrote into an all-legacy table after
		// this store opened are converted by RewrapSecrets.
		if _, err := withKey.db.Exec(`DELETE FROM secrets`); err != nil {
			t.Fatal(err)
		}
		putLegacySecret(t, withKey.db, mk, "default/key/c", 1, []byte("c"))
		putLegacySecret(t, withKey.db, mk, "default/key/c", 2, []byte("c2"))
		n, err = withKey.RewrapSecrets(ctx)
		if err != nil {
			t.Fatalf("RewrapSecrets of a legacy store: %v", err)
		}
		if n != 2 {
			t.Errorf("RewrapSecrets of a legacy store = %d, want 2", n)
		}
		checkValue(t, withKey, "default/key/c", "c2")
	})
}

// PutSecret into a store that contains only legacy rows converts them first,
// because legacy rows beside a versioned row are never released.
func TestPutSecretConvertsLegacyStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := openWithKey(t, b)
		putLegacySecret(t, s.db, s.cfg.MasterKey, "default/key/old", 1, []byte("old"))

		if _, err := s.PutSecret(ctx, "default/key/new", []byte("new")); err != nil {
			t.Fatalf("PutSecret: %v", err)
		}
		checkValue(t, s, "default/key/old", "old")
		checkValue(t, s, "default/key/new", "new")
	})
}

// A legacy row written beside versioned rows, as a replica of an older
// release that still runs writes it, is neither released nor converted.
func TestSecretStrayLegacyRowRejected(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := openWithKey(t, b)
		mk := s.cfg.MasterKey
		if _, err := s.PutSecret(ctx, "default/key/new", []byte("new")); err != nil {
			t.Fatal(err)
		}
		putLegacySecret(t, s.db, mk, "default/key/stray", 1, []byte("stray"))

		checkRejected(t, s, "default/key/stray", "default/key/stray", "version 1", "older Cloister release", "cloister secret put")
		if _, err := s.PutSecret(ctx, "default/key/other", []byte("other")); err != nil {
			t.Fatalf("PutSecret beside a stray legacy row: %v", err)
		}
		if _, err := s.RewrapSecrets(ctx); err != nil {
			t.Fatalf("RewrapSecrets beside a stray legacy row: %v", err)
		}
		reopened := open(t, s.cfg)
		checkRejected(t, reopened, "default/key/stray", "default/key/stray", "version 1", "legacy")

		if _, err := s.PutSecret(ctx, "default/key/stray", []byte("stored again")); err != nil {
			t.Fatal(err)
		}
		checkValue(t, s, "default/key/stray", "stored again")
	})
}

// A legacy row that does not open stops the conversion with an error that
// names it and the fix, and converts no other row.
func TestSecretUpgradeStopsAtBrokenRow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		mk := testMasterKey(t)
		db := openSchema7(t, b)
		a := putLegacySecret(t, db, mk, "default/key/a", 1, []byte("a"))
		putLegacySecret(t, db, mk, "default/key/b", 1, []byte("b"))
		copySealSchema7(t, db, a, "default/key/b", 1)

		cfg := b.config()
		cfg.MasterKey = mk
		s := open(t, cfg)
		_, err := s.RewrapSecrets(ctx)
		if !errors.Is(err, ErrDecrypt) {
			t.Errorf("RewrapSecrets: err = %v, want ErrDecrypt", err)
		}
		for _, part := range []string{"default/key/b", "version 1", "cloister secret rm default/key/b"} {
			if err == nil || !strings.Contains(err.Error(), part) {
				t.Errorf("RewrapSecrets: error %v does not contain %q", err, part)
			}
		}
		checkRejected(t, s, "default/key/a", "default/key/a", "legacy")

		if err := s.DeleteSecret(ctx, "default/key/b"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutSecret(ctx, "default/key/b", []byte("b again")); err != nil {
			t.Fatalf("PutSecret after deleting the broken secret: %v", err)
		}
		checkValue(t, s, "default/key/a", "a")
		checkValue(t, s, "default/key/b", "b again")
		if got := readRow(t, s.db, "default/key/a", 1); bytes.Equal(got.ciphertext, a.ciphertext) {
			t.Error("the ciphertext of default/key/a is unchanged after the conversion")
		}
	})
}

// copySealSchema7 copies a seal as copySeal does, into a table without the
// seal_format column.
func copySealSchema7(t *testing.T, db *sql.DB, from legacyRow, path string, version int64) {
	t.Helper()
	if _, err := db.Exec(`UPDATE secrets SET ciphertext = $1, wrapped_key = $2 WHERE path = $3 AND version = $4`,
		from.ciphertext, from.wrappedKey, path, version); err != nil {
		t.Fatal(err)
	}
}

// Replicas that open a legacy database at once convert it once: the
// sealing lock makes the later ones find it converted.
func TestSecretUpgradeConcurrentOpens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		mk := testMasterKey(t)
		db := openSchema7(t, b)
		putLegacySecret(t, db, mk, "default/key/a", 1, []byte("a1"))
		putLegacySecret(t, db, mk, "default/key/a", 2, []byte("a2"))

		const replicas = 3
		cfg := b.config()
		cfg.MasterKey = mk
		stores := make([]*sqlStore, replicas)
		done := make(chan struct{})
		for i := range replicas {
			go func() {
				defer func() { done <- struct{}{} }()
				s, err := Open(ctx, cfg)
				if err != nil {
					t.Errorf("replica %d: Open: %v", i, err)
					return
				}
				stores[i] = s.(*sqlStore)
			}()
		}
		for range replicas {
			<-done
		}
		for _, s := range stores {
			if s != nil {
				defer s.Close()
			}
		}
		if t.Failed() {
			return
		}

		for i, s := range stores {
			got, err := s.GetSecret(ctx, "default/key/a")
			if err != nil {
				t.Errorf("replica %d: GetSecret: %v", i, err)
				continue
			}
			if string(got.Value) != "a2" {
				t.Errorf("replica %d: GetSecret = %q, want a2", i, got.Value)
			}
		}
		records, err := stores[0].ListAudit(ctx, AuditQuery{Action: AuditAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != 1 {
			t.Errorf("%d admin audit records after concurrent opens, want one conversion record", len(records))
		}
	})
}
