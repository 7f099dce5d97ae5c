package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
)

// denyAllResourcePolicy is a resource policy that releases nothing.
const denyAllResourcePolicy = "package deny_all\nallow := false\n"

// errGenerationRead is the error of a failed configuration generation read.
var errGenerationRead = errors.New("configuration generation read failed")

// spyStore counts configuration generation reads, fails them while
// failGeneration is set, and runs afterGetPolicy after each GetPolicy.
type spyStore struct {
	store.Store
	generationReads atomic.Int64
	failGeneration  atomic.Bool
	afterGetPolicy  func()
}

func (s *spyStore) ConfigGeneration(ctx context.Context) (int64, error) {
	s.generationReads.Add(1)
	if s.failGeneration.Load() {
		return 0, errGenerationRead
	}
	return s.Store.ConfigGeneration(ctx)
}

func (s *spyStore) GetPolicy(ctx context.Context, kind store.PolicyKind, name string) (*store.Policy, error) {
	p, err := s.Store.GetPolicy(ctx, kind, name)
	if s.afterGetPolicy != nil {
		s.afterGetPolicy()
	}
	return p, err
}

// replicaPair is replica A, a service on its own store, and the store of
// replica B, opened separately on the same database as another replica
// would.
type replicaPair struct {
	a      *testService
	spy    *spyStore
	storeB store.Store
}

// startReplicaPair opens two stores on one database of b, stores the good
// emulator's measurement and testSecret, and serves replica A on
// 127.0.0.1.
func startReplicaPair(t *testing.T, b backend) *replicaPair {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, store.MasterKeySize)
	rand.Read(key)
	masterKey, err := store.NewMasterKey(key)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	cfg := b.config(t)
	cfg.MasterKey, cfg.Now, cfg.Logger = masterKey, clk.Now, quietLogger()

	var stores [2]store.Store
	for i := range stores {
		st, err := store.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open %s store %d: %v", b.name, i, err)
		}
		t.Cleanup(func() { st.Close() })
		stores[i] = st
	}
	storeB := stores[1]
	if _, err := storeB.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: goodMeasurement(t)}); err != nil {
		t.Fatal(err)
	}
	if _, err := storeB.PutSecret(ctx, testSecretPath, testSecret); err != nil {
		t.Fatal(err)
	}

	anchors := &collateral.Set{}
	for _, e := range testEmulators(t) {
		anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "emulator", Raw: e.Root().Raw, Certificate: e.Root()})
	}
	signingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spy := &spyStore{Store: stores[0]}
	config := Config{Store: spy, SigningKey: signingKey, AllowEmulated: true, TrustAnchors: anchors, Logger: quietLogger(), Now: clk.Now}
	srv, err := New(config)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	a := &testService{Server: hs, store: spy, clock: clk, srv: srv, config: config}
	return &replicaPair{a: a, spy: spy, storeB: storeB}
}

// wantSecret checks that a client of the good emulator receives want from
// replica A.
func (p *replicaPair) wantSecret(t *testing.T, c *kbs.Client, want []byte) {
	t.Helper()
	got, err := c.Resource(context.Background(), testSecretPath)
	if err != nil {
		t.Fatalf("resource from replica A: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("resource from replica A = %q, want %q", got, want)
	}
}

// Replica A caches what its requests read, replica B changes it, and A's
// next request uses the change.
func TestConfigCacheOtherReplicaChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		pair := startReplicaPair(t, b)
		c := pair.a.newClient(t, "good")
		pair.wantSecret(t, c, testSecret)
		pair.wantSecret(t, c, testSecret)

		replaced := []byte("rotated database password")
		if _, err := pair.storeB.PutSecret(ctx, testSecretPath, replaced); err != nil {
			t.Fatal(err)
		}
		pair.wantSecret(t, c, replaced)

		if _, err := pair.storeB.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName, denyAllResourcePolicy); err != nil {
			t.Fatal(err)
		}
		_, err := c.Resource(ctx, testSecretPath)
		wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)

		if err := pair.storeB.DeletePolicy(ctx, store.PolicyResource, DefaultResourcePolicyName); err != nil {
			t.Fatal(err)
		}
		pair.wantSecret(t, c, replaced)

		if err := pair.storeB.DeleteSecret(ctx, testSecretPath); err != nil {
			t.Fatal(err)
		}
		_, err = c.Resource(ctx, testSecretPath)
		wantProblem(t, err, kbs.ProblemPluginInternalError, http.StatusUnauthorized)

		if _, err := pair.storeB.PutSecret(ctx, testSecretPath, testSecret); err != nil {
			t.Fatal(err)
		}
		pair.wantSecret(t, c, testSecret)

		// A new client attests again, so its token no longer lists an
		// accepted measurement once the reference value is gone.
		pair.wantSecret(t, pair.a.newClient(t, "good"), testSecret)
		if err := pair.storeB.RemoveReferenceValue(ctx, "snp.measurement", goodMeasurement(t)); err != nil {
			t.Fatal(err)
		}
		_, err = pair.a.newClient(t, "good").Resource(ctx, testSecretPath)
		wantProblem(t, err, kbs.ProblemPolicyDeny, http.StatusUnauthorized)
	})
}

// A failed read of the configuration generation fails the request, even
// with everything it needs in the cache.
func TestConfigCacheGenerationReadFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		pair := startReplicaPair(t, b)
		c := pair.a.newClient(t, "good")
		pair.wantSecret(t, c, testSecret)

		pair.spy.failGeneration.Store(true)
		_, err := c.Resource(ctx, testSecretPath)
		wantProblem(t, err, kbs.ProblemPolicyEngineError, http.StatusUnauthorized)

		if _, err := pair.a.newClient(t, "good").Attest(ctx); err == nil {
			t.Error("attest succeeded while the configuration generation read fails")
		}
	})
}

// Each KBS request reads the configuration generation once, and the
// resource request reads it for the policy and the secret together.
func TestConfigCacheOneGenerationReadPerRequest(t *testing.T) {
	b := backends(t)[0]
	pair := startReplicaPair(t, b)
	c, _ := pair.a.attestClient(t, "good")

	for range 2 {
		before := pair.spy.generationReads.Load()
		pair.wantSecret(t, c, testSecret)
		if n := pair.spy.generationReads.Load() - before; n != 1 {
			t.Errorf("resource request read the configuration generation %d times, want 1", n)
		}
	}
}

// newTestCache opens a store of b with a master key and returns a cache
// over it with the spy between them.
func newTestCache(t *testing.T, b backend) (*configCache, *spyStore) {
	t.Helper()
	key := make([]byte, store.MasterKeySize)
	rand.Read(key)
	masterKey, err := store.NewMasterKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := b.config(t)
	cfg.MasterKey, cfg.Logger = masterKey, quietLogger()
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s store: %v", b.name, err)
	}
	t.Cleanup(func() { st.Close() })
	spy := &spyStore{Store: st}
	return newConfigCache(spy), spy
}

// A change committed while the cache loads a policy, after it read the
// generation, is seen by the next read: the loaded policy is tagged with
// the older generation and reloaded.
func TestConfigCacheChangeDuringLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		cache, spy := newTestCache(t, b)
		if _, err := spy.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName, "package first\nallow := true\n"); err != nil {
			t.Fatal(err)
		}

		var once sync.Once
		spy.afterGetPolicy = func() {
			once.Do(func() {
				if _, err := spy.Store.PutPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName, denyAllResourcePolicy); err != nil {
					t.Error(err)
				}
			})
		}
		first, err := cache.resourcePolicy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if first.module.Text != "package first\nallow := true\n" {
			t.Fatalf("first read = %q, want the policy stored before it", first.module.Text)
		}

		second, err := cache.resourcePolicy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if second.module.Text != denyAllResourcePolicy {
			t.Errorf("read after a change during the load = %q, want %q", second.module.Text, denyAllResourcePolicy)
		}
	})
}

// The cache serves what the store serves: the default policy when none is
// stored, the active reference values, and ErrNotFound for a missing
// secret.
func TestConfigCacheMatchesStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		cache, spy := newTestCache(t, b)

		mod, err := cache.attestationPolicy(ctx, "snp")
		if err != nil {
			t.Fatal(err)
		}
		if mod.module.Name != "default-snp" {
			t.Errorf("attestation policy without a stored one = %q, want default-snp", mod.module.Name)
		}
		if _, err := spy.PutPolicy(ctx, store.PolicyAttestation, "snp", "package mine\ndeny := set()\n"); err != nil {
			t.Fatal(err)
		}
		mod, err = cache.attestationPolicy(ctx, "snp")
		if err != nil {
			t.Fatal(err)
		}
		if mod.module.Name != "snp" || mod.module.Text != "package mine\ndeny := set()\n" {
			t.Errorf("attestation policy after storing one = %+v, want the stored one", mod)
		}
		if mod.id != mod.module.ID() {
			t.Errorf("cached policy ID = %q, want %q", mod.id, mod.module.ID())
		}
		if mod.digest != mod.module.Digest() {
			t.Errorf("cached policy digest = %q, want %q", mod.digest, mod.module.Digest())
		}

		_, err = cache.secret(ctx, "default/key/missing")
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing secret: err = %v, want ErrNotFound", err)
		}
		_, err = cache.secret(ctx, "default/key/missing")
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing secret from the cache: err = %v, want ErrNotFound", err)
		}

		now := time.Now().Truncate(time.Microsecond)
		expiries := map[string]time.Time{
			"never":     {},
			"before":    now.Add(-time.Microsecond),
			"at":        now,
			"after":     now.Add(time.Microsecond),
			"after-1ms": now.Add(time.Millisecond),
		}
		for value, expires := range expiries {
			if _, err := spy.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: value, Expires: expires}); err != nil {
				t.Fatal(err)
			}
		}
		for _, at := range []time.Time{now.Add(-time.Microsecond), now, now.Add(time.Microsecond), now.Add(time.Second)} {
			want, err := spy.ActiveReferenceValues(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cache.referenceValues(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("reference values at %v = %v, want %v as the store returns", at, got, want)
			}
		}
	})
}

// The secret row cache keeps at most maxCachedSecrets rows.
func TestConfigCacheSecretBound(t *testing.T) {
	b := backends(t)[0]
	ctx := context.Background()
	cache, _ := newTestCache(t, b)
	for i := range maxCachedSecrets + 10 {
		if _, err := cache.secret(ctx, fmt.Sprintf("default/key/missing-%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("secret %d: err = %v, want ErrNotFound", i, err)
		}
	}
	cache.mu.Lock()
	n := len(cache.secrets)
	cache.mu.Unlock()
	if n > maxCachedSecrets {
		t.Errorf("cache holds %d secret rows, want at most %d", n, maxCachedSecrets)
	}
}

// Concurrent reads during writes return, once the writes are committed,
// the last value written.
func TestConfigCacheConcurrentReads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		cache, spy := newTestCache(t, b)
		if _, err := spy.PutSecret(ctx, testSecretPath, []byte("version 0")); err != nil {
			t.Fatal(err)
		}

		const writes = 10
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 50 {
					if _, err := cache.secret(ctx, testSecretPath); err != nil {
						t.Error(err)
						return
					}
					if _, err := cache.resourcePolicy(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for i := 1; i <= writes; i++ {
			if _, err := spy.PutSecret(ctx, testSecretPath, fmt.Appendf(nil, "version %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()

		got, err := cache.secret(ctx, testSecretPath)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("version %d", writes); string(got.Value) != want {
			t.Errorf("secret after the writes = %q, want %q", got.Value, want)
		}
	})
}
