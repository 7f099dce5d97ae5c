package storecache

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/store"
)

// openStores returns the stores to test against: SQLite always, and
// PostgreSQL when CLOISTER_TEST_POSTGRES_URL names one (required under CI).
func openStores(t *testing.T) map[string]store.Store {
	t.Helper()
	raw := make([]byte, store.MasterKeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	key, err := store.NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	stores := map[string]store.Store{}
	st, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir(), MasterKey: key, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	stores["sqlite"] = st
	if url := os.Getenv("CLOISTER_TEST_POSTGRES_URL"); url != "" {
		pg, err := store.Open(context.Background(), store.Config{DatabaseURL: url, MasterKey: key, Logger: quiet})
		if err != nil {
			t.Fatalf("opening PostgreSQL: %v", err)
		}
		stores["postgres"] = pg
	} else if os.Getenv("CI") != "" {
		t.Fatal("CLOISTER_TEST_POSTGRES_URL is not set under CI")
	}
	for _, s := range stores {
		t.Cleanup(func() { s.Close() })
	}
	return stores
}

func TestBackendSharesEntries(t *testing.T) {
	for name, st := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := "test/" + time.Now().Format(time.RFC3339Nano)
			replicaA := &collateral.Cache{Backend: Backend{Cache: st.Collateral()}}
			replicaB := &collateral.Cache{Backend: Backend{Cache: st.Collateral()}}

			fetches := 0
			fetch := func(context.Context) (*collateral.Entry, error) {
				fetches++
				return &collateral.Entry{URL: "https://pcs.example.test/tcb", Body: []byte(`{"tcbInfo":{}}`),
					Headers: map[string]string{"TCB-Info-Issuer-Chain": "PEM"}, NextUpdate: time.Now().Add(48 * time.Hour)}, nil
			}
			if _, err := replicaA.Get(ctx, key, time.Now(), fetch); err != nil {
				t.Fatal(err)
			}
			got, err := replicaB.Get(ctx, key, time.Now(), fetch)
			if err != nil {
				t.Fatal(err)
			}
			if fetches != 1 {
				t.Errorf("upstream fetches = %d, want 1: the second replica must use the shared copy", fetches)
			}
			if got.Headers["TCB-Info-Issuer-Chain"] != "PEM" || string(got.Body) != `{"tcbInfo":{}}` {
				t.Errorf("entry did not round-trip: %+v", got)
			}

			entries, err := Backend{Cache: st.Collateral()}.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range entries {
				found = found || e.Key == key
			}
			if !found {
				t.Errorf("List does not include %s", key)
			}

			missing, err := Backend{Cache: st.Collateral()}.Get(ctx, key+"/absent")
			if err != nil || missing != nil {
				t.Errorf("Get of an absent key = %v, %v; want nil, nil", missing, err)
			}
		})
	}
}
