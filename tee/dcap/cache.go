package dcap

import "sync"

// cacheLimit bounds each cache. A verifier meets few distinct platforms and
// collateral versions. A full cache is emptied rather than tracked for
// recency, which is simpler and costs only re-verification.
const cacheLimit = 4096

// memo is a bounded map from a SHA-256 digest to a value computed from the
// digested bytes. Only successful results are stored: a failure is
// recomputed every time, so a cache can never turn a failure into a pass.
type memo[T any] struct {
	mu sync.RWMutex
	m  map[[32]byte]T
}

func (c *memo[T]) get(key [32]byte) (T, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *memo[T]) set(key [32]byte, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cacheLimit {
		c.m = make(map[[32]byte]T)
	}
	c.m[key] = v
}

// verifiedSet remembers digests of (signed bytes, signature, key)
// combinations whose signature verified.
type verifiedSet struct{ memo[struct{}] }

func (s *verifiedSet) has(key [32]byte) bool {
	_, ok := s.get(key)
	return ok
}

func (s *verifiedSet) put(key [32]byte) { s.set(key, struct{}{}) }
