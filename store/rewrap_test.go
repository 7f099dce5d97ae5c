package store

import (
	"context"
	"testing"
	"time"
)

// A replica that still uses the old master key stores a secret while the
// rewrap runs. The rewrap must wait for that secret and rewrap it too, so
// that no secret is left under the old key once the rewrap has returned.
func TestRewrapWaitsForConcurrentPut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		oldKey, newKey := testMasterKey(t), testMasterKey(t)
		oldCfg := b.config()
		oldCfg.MasterKey = oldKey
		oldReplica := open(t, oldCfg)
		if _, err := oldReplica.PutSecret(ctx, "default/key/before", []byte("v1")); err != nil {
			t.Fatal(err)
		}
		newCfg := b.config()
		newCfg.MasterKey, newCfg.OldMasterKeys = newKey, []*MasterKey{oldKey}
		rotated := open(t, newCfg)

		stored := make(chan struct{})
		rewrapped := make(chan error, 1)
		go func() {
			<-stored
			_, err := rotated.RewrapSecrets(ctx)
			rewrapped <- err
		}()
		err := oldReplica.Tx(ctx, func(tx Tx) error {
			if _, err := tx.PutSecret(ctx, "default/key/during", []byte("v2")); err != nil {
				return err
			}
			close(stored)
			// Give the rewrap time to run before this secret commits.
			time.Sleep(300 * time.Millisecond)
			return nil
		})
		if err != nil {
			t.Fatalf("PutSecret during the rewrap: %v", err)
		}
		if err := <-rewrapped; err != nil {
			t.Fatalf("RewrapSecrets: %v", err)
		}

		list, err := rotated.ListSecrets(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 {
			t.Fatalf("%d secrets stored, want 2", len(list))
		}
		for _, info := range list {
			if info.MasterKeyID != newKey.ID() {
				t.Errorf("secret %s is wrapped by %s after the rewrap, want the new key %s", info.Path, info.MasterKeyID, newKey.ID())
			}
		}
	})
}
