package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/store"
)

// maxCachedSecrets bounds the sealed secret rows a configCache keeps. When
// the cache is full, it drops the rows of older generations, and then
// arbitrary rows, so the worst case is an extra read of a dropped row.
const maxCachedSecrets = 4096

// configCache keeps the attestation policies, the resource policy, the
// reference values and sealed secret rows read from the store. Each item is
// tagged with the configuration generation (store.ConfigGeneration) that was
// read before the item was loaded, so the item reflects at least the
// changes that generation counts. A request uses an item only when its tag
// equals the generation the request read, and reloads it otherwise. A
// change that any replica committed before the request read the
// generation is therefore never missed, and a reload that raced with a
// newer change costs at most one more reload.
//
// Secret values are never cached in plaintext: a cached row is decrypted
// per request by store.OpenSecret, as store.GetSecret does.
//
// A configCache is safe for concurrent use.
type configCache struct {
	store store.Store

	mu          sync.Mutex
	attestation map[attest.TEE]cachedModule
	resource    cachedModule
	refs        cachedReferenceValues
	secrets     map[string]cachedSecret
}

type cachedModule struct {
	loaded     bool
	generation int64
	policy     loadedPolicy
}

// loadedPolicy is a policy module with its ID and digest, computed once
// when the cache loads the module. Every /attest and /resource request
// needs them, and policy.Module computes them on each call.
type loadedPolicy struct {
	module policy.Module
	id     string
	digest string
}

func newLoadedPolicy(m policy.Module) loadedPolicy {
	return loadedPolicy{module: m, id: m.ID(), digest: m.Digest()}
}

type cachedReferenceValues struct {
	loaded     bool
	generation int64
	rows       []store.ReferenceValue
}

// cachedSecret is a sealed row, or a nil row for a path with no secret.
type cachedSecret struct {
	generation int64
	sealed     *store.SealedSecret
}

func newConfigCache(st store.Store) *configCache {
	return &configCache{
		store:       st,
		attestation: map[attest.TEE]cachedModule{},
		secrets:     map[string]cachedSecret{},
	}
}

// attestationPolicy reads the store's attestation policy for tee through
// the cache, and uses policy.DefaultAttestation(tee) when the store has
// none.
func (c *configCache) attestationPolicy(ctx context.Context, tee attest.TEE) (loadedPolicy, error) {
	generation, err := c.generation(ctx)
	if err != nil {
		return loadedPolicy{}, err
	}

	c.mu.Lock()
	item := c.attestation[tee]
	c.mu.Unlock()
	if item.loaded && item.generation == generation {
		return item.policy, nil
	}

	mod := policy.DefaultAttestation(tee)
	p, err := c.store.GetPolicy(ctx, store.PolicyAttestation, string(tee))
	switch {
	case err == nil:
		mod = policy.Module{Name: p.Name, Text: p.Module}
	case !errors.Is(err, store.ErrNotFound):
		return loadedPolicy{}, fmt.Errorf("read attestation policy %s: %w", tee, err)
	}

	loaded := newLoadedPolicy(mod)
	c.mu.Lock()
	c.attestation[tee] = cachedModule{loaded: true, generation: generation, policy: loaded}
	c.mu.Unlock()
	return loaded, nil
}

// resourcePolicy reads the store's resource policy named
// DefaultResourcePolicyName through the cache, and uses
// policy.DefaultResource when the store has none.
func (c *configCache) resourcePolicy(ctx context.Context) (loadedPolicy, error) {
	generation, err := c.generation(ctx)
	if err != nil {
		return loadedPolicy{}, err
	}

	c.mu.Lock()
	item := c.resource
	c.mu.Unlock()
	if item.loaded && item.generation == generation {
		return item.policy, nil
	}

	mod := policy.DefaultResource()
	p, err := c.store.GetPolicy(ctx, store.PolicyResource, DefaultResourcePolicyName)
	switch {
	case err == nil:
		mod = policy.Module{Name: p.Name, Text: p.Module}
	case !errors.Is(err, store.ErrNotFound):
		return loadedPolicy{}, fmt.Errorf("read resource policy: %w", err)
	}

	loaded := newLoadedPolicy(mod)
	c.mu.Lock()
	c.resource = cachedModule{loaded: true, generation: generation, policy: loaded}
	c.mu.Unlock()
	return loaded, nil
}

// referenceValues selects, for each name, the reference values that have
// not expired at time at, as store.ActiveReferenceValues does. The cache
// keeps every row with its expiry and filters per call, so a value expires
// on time without a change of generation.
func (c *configCache) referenceValues(ctx context.Context, at time.Time) (map[string][]string, error) {
	generation, err := c.generation(ctx)
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	item := c.refs
	c.mu.Unlock()
	if item.loaded && item.generation == generation {
		return store.ActiveAt(item.rows, at), nil
	}

	rows, err := c.store.ListReferenceValues(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("read reference values: %w", err)
	}

	c.mu.Lock()
	c.refs = cachedReferenceValues{loaded: true, generation: generation, rows: rows}
	c.mu.Unlock()
	return store.ActiveAt(rows, at), nil
}

// secret reads the sealed latest version of the secret at path through the
// cache and decrypts it. Its errors are those of store.GetSecret.
func (c *configCache) secret(ctx context.Context, path string) (*store.Secret, error) {
	generation, err := c.generation(ctx)
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	item, ok := c.secrets[path]
	c.mu.Unlock()
	if !ok || item.generation != generation {
		sealed, err := c.store.GetSealedSecret(ctx, path)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		item = cachedSecret{generation: generation, sealed: sealed}
		c.putSecret(path, item)
	}

	if item.sealed == nil {
		return nil, fmt.Errorf("secret %s: %w", path, store.ErrNotFound)
	}
	return c.store.OpenSecret(item.sealed)
}

// putSecret stores item under path and keeps at most maxCachedSecrets rows.
func (c *configCache) putSecret(path string, item cachedSecret) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if _, ok := c.secrets[path]; !ok && len(c.secrets) >= maxCachedSecrets {
		for p, old := range c.secrets {
			if old.generation != item.generation {
				delete(c.secrets, p)
			}
		}
		for p := range c.secrets {
			if len(c.secrets) < maxCachedSecrets {
				break
			}
			delete(c.secrets, p)
		}
	}
	c.secrets[path] = item
}

// generation reads the configuration generation from the store once per
// request that went through withRequestGeneration, and on every call for
// a ctx without one. A read error is returned as is, so the request fails
// as on any store error.
func (c *configCache) generation(ctx context.Context) (int64, error) {
	memo, ok := ctx.Value(requestGenerationKey{}).(*requestGeneration)
	if !ok {
		return c.store.ConfigGeneration(ctx)
	}

	memo.mu.Lock()
	defer memo.mu.Unlock()
	if memo.read {
		return memo.generation, nil
	}
	generation, err := c.store.ConfigGeneration(ctx)
	if err != nil {
		return 0, err
	}
	memo.generation, memo.read = generation, true
	return generation, nil
}

type requestGenerationKey struct{}

// requestGeneration is the configuration generation of one request. The
// resource request reads the resource policy and the secret at one
// generation, with one read of it.
type requestGeneration struct {
	mu         sync.Mutex
	read       bool
	generation int64
}

// withRequestGeneration makes every configCache read within one request
// use the generation that the request's first read returned.
func withRequestGeneration(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), requestGenerationKey{}, &requestGeneration{})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// cachingStore is the store.Store given to the key broker: GetSecret reads
// the sealed row through the configCache. Every other method, including
// GetSecret inside a transaction, goes to the store.
type cachingStore struct {
	store.Store
	cache *configCache
}

func (s cachingStore) GetSecret(ctx context.Context, path string) (*store.Secret, error) {
	return s.cache.secret(ctx, path)
}
