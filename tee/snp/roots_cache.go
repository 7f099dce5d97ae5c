package snp

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"sync"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
)

// rootsCache remembers the roots attest.Roots chose for a given content of
// trust anchors and collateral. attest.Roots checks the self-signature of
// every self-issued certificate it is given, an RSA verification per call
// that would otherwise dominate a warm verification. The choice depends
// only on the certificates' bytes and on whether an online source fetched
// them, so the key is the digest of their SHA-256 sums in order, each
// followed by that mark.
type rootsCache struct {
	mu      sync.Mutex
	entries map[[32]byte][]*x509.Certificate
}

// maxRootsCacheEntries bounds the cache; callers pass few distinct bundles.
const maxRootsCacheEntries = 256

// roots returns attest.Roots for opts with its collateral replaced by set,
// which the caller already fetched, so that an online source is not asked
// twice.
func (c *rootsCache) roots(ctx context.Context, opts attest.Options, set *collateral.Set, q collateral.Query) ([]*x509.Certificate, error) {
	h := sha256.New()
	for _, s := range []*collateral.Set{opts.Anchors(q.TEE), set} {
		for _, it := range s.OfKind(collateral.KindCertificate) {
			h.Write(it.SHA256[:])
			if it.Fetched {
				h.Write([]byte{1})
			} else {
				h.Write([]byte{0})
			}
		}
		h.Write([]byte{2}) // separates the anchors from the collateral
	}
	var key [32]byte
	h.Sum(key[:0])

	c.mu.Lock()
	roots, ok := c.entries[key]
	c.mu.Unlock()
	if ok {
		return roots, nil
	}
	opts.Collateral = set
	roots, err := attest.Roots(ctx, opts, q, embeddedARKs)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= maxRootsCacheEntries {
		c.entries = map[[32]byte][]*x509.Certificate{}
	}
	c.entries[key] = roots
	c.mu.Unlock()
	return roots, nil
}
