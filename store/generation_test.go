package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// generationStep is one change, or one operation that must not change the
// configuration generation.
type generationStep struct {
	name   string
	change func() error
}

// runGenerationSteps runs steps on s in order and checks after each that
// the generation increased, or stayed the same when wantIncrease is false.
func runGenerationSteps(t *testing.T, s *sqlStore, steps []generationStep, wantIncrease bool) {
	t.Helper()
	ctx := context.Background()
	previous, err := s.ConfigGeneration(ctx)
	if err != nil {
		t.Fatalf("ConfigGeneration: %v", err)
	}
	for _, step := range steps {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got, err := s.ConfigGeneration(ctx)
		if err != nil {
			t.Fatalf("ConfigGeneration after %s: %v", step.name, err)
		}
		if wantIncrease && got <= previous {
			t.Errorf("after %s: generation %d, want more than %d", step.name, got, previous)
		}
		if !wantIncrease && got != previous {
			t.Errorf("after %s: generation %d, want unchanged %d", step.name, got, previous)
		}
		previous = got
	}
}

func TestConfigGenerationChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		oldKey, newKey := testMasterKey(t), testMasterKey(t)
		cfg := b.config()
		cfg.MasterKey = oldKey
		s := open(t, cfg)

		rotatedConfig := b.config()
		rotatedConfig.MasterKey = newKey
		rotatedConfig.OldMasterKeys = []*MasterKey{oldKey}
		rotated := open(t, rotatedConfig)

		// Each step changes one of the watched tables, through the store
		// or, in the last steps, in plain SQL as an operator would.
		steps := []generationStep{
			{"insert policy", func() error {
				_, err := s.PutPolicy(ctx, PolicyResource, "default", "package a")
				return err
			}},
			{"insert policy version", func() error {
				_, err := s.PutPolicy(ctx, PolicyResource, "default", "package b")
				return err
			}},
			{"delete policy", func() error { return s.DeletePolicy(ctx, PolicyResource, "default") }},
			{"insert reference value", func() error {
				_, err := s.AddReferenceValue(ctx, ReferenceValue{Name: "snp.measurement", Value: "aa"})
				return err
			}},
			{"update reference value expiry", func() error {
				_, err := s.AddReferenceValue(ctx, ReferenceValue{Name: "snp.measurement", Value: "aa", Expires: time.Now().Add(time.Hour)})
				return err
			}},
			{"delete reference value", func() error { return s.RemoveReferenceValue(ctx, "snp.measurement", "aa") }},
			{"insert secret", func() error {
				_, err := s.PutSecret(ctx, "default/key/a", []byte("value a"))
				return err
			}},
			{"insert secret version", func() error {
				_, err := s.PutSecret(ctx, "default/key/a", []byte("value b"))
				return err
			}},
			{"rewrap secrets", func() error {
				n, err := rotated.RewrapSecrets(ctx)
				if err == nil && n != 2 {
					err = fmt.Errorf("rewrapped %d secret versions, want 2", n)
				}
				return err
			}},
			{"delete secret", func() error { return s.DeleteSecret(ctx, "default/key/a") }},
			{"insert secret in transaction", func() error {
				return s.Tx(ctx, func(tx Tx) error {
					_, err := tx.PutSecret(ctx, "default/key/b", []byte("value"))
					return err
				})
			}},
			{"update policy in SQL", func() error {
				if _, err := s.PutPolicy(ctx, PolicyAttestation, "snp", "package a"); err != nil {
					return err
				}
				before, err := s.ConfigGeneration(ctx)
				if err != nil {
					return err
				}
				if _, err := s.db.ExecContext(ctx, `UPDATE policies SET module = 'package c'`); err != nil {
					return err
				}
				after, err := s.ConfigGeneration(ctx)
				if err == nil && after == before {
					err = fmt.Errorf("generation %d did not change on the UPDATE statement", after)
				}
				return err
			}},
			{"insert reference value in SQL", func() error {
				_, err := s.db.ExecContext(ctx, `INSERT INTO reference_values (name, value, expires, added) VALUES ('snp.measurement', 'bb', 0, 0)`)
				return err
			}},
			{"delete reference values in SQL", func() error {
				_, err := s.db.ExecContext(ctx, `DELETE FROM reference_values`)
				return err
			}},
			{"update secret in SQL", func() error {
				_, err := s.db.ExecContext(ctx, `UPDATE secrets SET size = size`)
				return err
			}},
		}

		if s.d.postgres {
			// SQLite has no TRUNCATE statement.
			steps = append(steps, generationStep{"truncate secrets in SQL", func() error {
				_, err := s.db.ExecContext(ctx, `TRUNCATE secrets`)
				return err
			}})
		}

		runGenerationSteps(t, s, steps, true)
	})
}

func TestConfigGenerationUnchanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := openWithKey(t, b)
		if _, err := s.PutSecret(ctx, "default/key/a", []byte("value")); err != nil {
			t.Fatal(err)
		}

		steps := []generationStep{
			{"read secret", func() error {
				_, err := s.GetSecret(ctx, "default/key/a")
				return err
			}},
			{"session, nonce and audit writes", func() error {
				now := time.Now()
				sess := Session{ID: "s1", Nonce: "n1", TEE: "snp", Created: now, Expires: now.Add(time.Minute), State: SessionChallenged}
				if err := s.CreateSession(ctx, sess); err != nil {
					return err
				}
				_, err := s.AppendAuditGrouped(ctx, AuditRecord{Action: AuditDeny, Reason: "test"})
				return err
			}},
			{"rolled back policy insert", func() error {
				errRollback := errors.New("roll back")
				err := s.Tx(ctx, func(tx Tx) error {
					if _, err := tx.PutPolicy(ctx, PolicyResource, "default", "package a"); err != nil {
						return err
					}
					return errRollback
				})
				if !errors.Is(err, errRollback) {
					return fmt.Errorf("Tx = %v, want the rollback error", err)
				}
				return nil
			}},
		}

		runGenerationSteps(t, s, steps, false)
	})
}

// TestActiveAtMatchesStore checks that filtering listed rows in Go selects
// what the store's query selects, for values that expire just before, at
// and just after the request time.
func TestActiveAtMatchesStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		at := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)

		expiries := map[string]time.Time{
			"never":           {},
			"before-1s":       at.Add(-time.Second),
			"before-1us":      at.Add(-time.Microsecond),
			"at":              at,
			"after-1us":       at.Add(time.Microsecond),
			"after-1s":        at.Add(time.Second),
			"at-plus-500ns":   at.Add(500 * time.Nanosecond),
			"at-minus-1500ns": at.Add(-1500 * time.Nanosecond),
		}
		for value, expires := range expiries {
			for _, name := range []string{"snp.measurement", "tdx.mrtd"} {
				if _, err := s.AddReferenceValue(ctx, ReferenceValue{Name: name, Value: value, Expires: expires}); err != nil {
					t.Fatalf("AddReferenceValue %s: %v", value, err)
				}
			}
		}
		// A name whose only value expires maps to an empty list after it.
		if _, err := s.AddReferenceValue(ctx, ReferenceValue{Name: "snp.chip_id", Value: "at", Expires: at}); err != nil {
			t.Fatalf("AddReferenceValue snp.chip_id: %v", err)
		}
		rows, err := s.ListReferenceValues(ctx, "")
		if err != nil {
			t.Fatalf("ListReferenceValues: %v", err)
		}

		times := []time.Time{
			{},
			at.Add(-time.Second),
			at.Add(-time.Microsecond),
			at.Add(-time.Nanosecond),
			at,
			at.Add(time.Nanosecond),
			at.Add(999 * time.Nanosecond),
			at.Add(time.Microsecond),
			at.Add(time.Second),
			at.Add(time.Hour),
		}
		for _, when := range times {
			want, err := s.ActiveReferenceValues(ctx, when)
			if err != nil {
				t.Fatalf("ActiveReferenceValues(%v): %v", when, err)
			}
			if got := ActiveAt(rows, when); !reflect.DeepEqual(got, want) {
				t.Errorf("ActiveAt(%v) = %v, want %v as ActiveReferenceValues returns", when, got, want)
			}
		}
	})
}

func TestSealedSecretOpens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := openWithKey(t, b)
		if _, err := s.PutSecret(ctx, "default/key/a", []byte("value a")); err != nil {
			t.Fatal(err)
		}

		sealed, err := s.GetSealedSecret(ctx, "default/key/a")
		if err != nil {
			t.Fatalf("GetSealedSecret: %v", err)
		}
		opened, err := s.OpenSecret(sealed)
		if err != nil {
			t.Fatalf("OpenSecret: %v", err)
		}
		want, err := s.GetSecret(ctx, "default/key/a")
		if err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
		if !reflect.DeepEqual(opened, want) {
			t.Errorf("OpenSecret = %+v, want %+v as GetSecret returns", opened, want)
		}

		if _, err := s.GetSealedSecret(ctx, "default/key/missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSealedSecret of a missing path: err = %v, want ErrNotFound", err)
		}

		if _, err := s.OpenSecret(nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("OpenSecret(nil): err = %v, want ErrInvalid", err)
		}
		if _, err := s.OpenSecret(&SealedSecret{SecretInfo: sealed.SecretInfo}); !errors.Is(err, ErrDecrypt) {
			t.Errorf("OpenSecret without ciphertext: err = %v, want ErrDecrypt", err)
		}

		other := b.config()
		other.MasterKey = testMasterKey(t)
		if _, err := open(t, other).OpenSecret(sealed); !errors.Is(err, ErrDecrypt) {
			t.Errorf("OpenSecret with another master key: err = %v, want ErrDecrypt", err)
		}
	})
}

func TestConfigGenerationAfterRestore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := openWithKey(t, b)
		putSecrets := func(s *sqlStore, value string) int64 {
			t.Helper()
			for _, path := range []string{"default/key/a", "default/key/b"} {
				if _, err := s.PutSecret(ctx, path, []byte(value)); err != nil {
					t.Fatal(err)
				}
			}
			generation, err := s.ConfigGeneration(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return generation
		}

		backup, err := s.ConfigGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		restore := restoreBackup(t, s)
		lost := putSecrets(s, "lost")
		s = restore()

		got, err := s.ConfigGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != backup {
			t.Fatalf("generation after restore = %d, want the backup's %d", got, backup)
		}
		// The same number of changes as were lost must not reach the
		// generation that a replica may have cached with the lost data.
		again := putSecrets(s, "new")
		if again <= lost {
			t.Errorf("generation after restore and two changes = %d, want more than %d from before the restore", again, lost)
		}
	})
}

// restoreBackup takes a backup of s and returns a function that restores
// it and returns the store to use afterwards. SQLite's backup is a copy of
// the database file (VACUUM INTO), restored over the closed database. For
// PostgreSQL, restoring the generation row alone simulates a restore,
// because the other tables do not affect the generation.
func restoreBackup(t *testing.T, s *sqlStore) func() *sqlStore {
	t.Helper()
	ctx := context.Background()
	if s.d.postgres {
		var generation int64
		if err := s.db.QueryRowContext(ctx, `SELECT generation FROM config_generation WHERE id = 1`).Scan(&generation); err != nil {
			t.Fatal(err)
		}
		return func() *sqlStore {
			if _, err := s.db.ExecContext(ctx, `UPDATE config_generation SET generation = $1 WHERE id = 1`, generation); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}

	backup := filepath.Join(t.TempDir(), "backup.db")
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO '`+backup+`'`); err != nil {
		t.Fatal(err)
	}
	return func() *sqlStore {
		cfg := s.cfg
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.DataDir, SQLiteFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		return open(t, cfg)
	}
}
