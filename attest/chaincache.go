package attest

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"
)

// maxChainCacheEntries bounds a ChainCache. A verifier handles a few chains
// per platform, so the bound only guards memory against a flood of distinct
// chains. Reaching it empties the cache.
const maxChainCacheEntries = 1024

// ChainCache remembers certificate chains that verified, so that repeated
// evidence from the same platform skips certificate parsing and chain
// building. An entry is keyed by the DER of every input certificate and the
// roots, and is used only at a time inside every certificate's validity
// window. The zero value is ready to use and safe for concurrent use.
type ChainCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cachedChain
}

type cachedChain struct {
	chain               []*x509.Certificate
	notBefore, notAfter time.Time
}

// ChainKey returns the cache key for a chain built from the given DER
// certificates, in order: leaf, intermediates, then roots. Each certificate is
// length-prefixed, so that no two different lists share a key.
func ChainKey(ders ...[]byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, d := range ders {
		binary.BigEndian.PutUint64(n[:], uint64(len(d)))
		h.Write(n[:])
		h.Write(d)
	}
	var key [32]byte
	h.Sum(key[:0])
	return key
}

// Lookup returns the verified chain stored under key when at lies inside the
// validity window of every certificate of the chain.
func (c *ChainCache) Lookup(key [32]byte, at time.Time) ([]*x509.Certificate, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || at.Before(e.notBefore) || at.After(e.notAfter) {
		return nil, false
	}
	return e.chain, true
}

// Store records chain, leaf first, as verified for key. Callers store only a
// chain whose signatures verified up to a trusted root.
func (c *ChainCache) Store(key [32]byte, chain []*x509.Certificate) {
	if len(chain) == 0 {
		return
	}
	e := cachedChain{chain: chain, notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
	for _, cert := range chain[1:] {
		if cert.NotBefore.After(e.notBefore) {
			e.notBefore = cert.NotBefore
		}
		if cert.NotAfter.Before(e.notAfter) {
			e.notAfter = cert.NotAfter
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxChainCacheEntries {
		c.entries = map[[32]byte]cachedChain{}
	}
	c.entries[key] = e
}
