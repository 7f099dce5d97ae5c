package dcap

import "sync"

// cacheLimit bounds each cache. A verifier meets few distinct platforms and
// collateral versions. A full cache is emptied rather than tracked for
// recency, which is simpler and costs only re-verification.
const cacheLimit = 4096

// memo is a bounded map from a key (a SHA-256 digest of the input, or
// pointers to parsed inputs) to a value computed from it. Only successful
// results are stored, so a cache can never turn a failure into a pass. The
// one exception is a collateral file that does not parse. Its parse result
// carries the error, which depends on nothing but the file's bytes.
// Pointer keys stay valid because the map keeps their targets alive, so
// an address is never reused for another input while it is a key.
type memo[K comparable, T any] struct {
	mu sync.RWMutex
	m  map[K]T
}

func (c *memo[K, T]) get(key K) (T, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *memo[K, T]) set(key K, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cacheLimit {
		c.m = make(map[K]T)
	}
	c.m[key] = v
}

// verifiedSet remembers digests of (signed bytes, signature, key)
// combinations whose signature verified.
type verifiedSet struct{ memo[[32]byte, struct{}] }

func (s *verifiedSet) has(key [32]byte) bool {
	_, ok := s.get(key)
	return ok
}

func (s *verifiedSet) put(key [32]byte) { s.set(key, struct{}{}) }
