package nvgpu

import (
	"bytes"
	"crypto/x509"
	"slices"
	"sync"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/fifocache"
)

// rimCacheLimits bounds the RIM cache. The entry limit leaves room for the
// RIMs of several hundred driver and VBIOS releases under a few root sets.
// The size of an entry is counted as the length of its document, an
// estimate of the parsed certificates and golden values that it keeps, so
// that documents near MaxRIMSize fill the cache sooner.
var rimCacheLimits = fifocache.Limits{Entries: 1024, Bytes: 64 << 20}

// rimCacheDeadline is the deadline of every entry. Entries do not expire,
// because outcomeAt checks the validity windows again at each lookup, and
// the oldest entries are dropped when the cache is full.
var rimCacheDeadline = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// rimCache stores RIM verifications, failed ones too, by the SHA-256 of the
// document and the fingerprint of the trusted roots, so that a RIM verified
// under one set of roots is never trusted under another. A lookup returns
// exactly the outcome that a new verification at the new time would
// return (rimVerification.outcomeAt), and verifies again when it cannot.
// The zero value is ready to use and safe for concurrent use.
type rimCache struct {
	mu      sync.Mutex
	entries fifocache.Cache[*rimVerification]
}

// rootsFingerprint returns the cache key part of a set of roots: the
// SHA-256 of their distinct DER encodings in byte order. The roots form a
// trust set, so the order in which the caller lists them and repeats of a
// root do not change the key.
func rootsFingerprint(roots []*x509.Certificate) [32]byte {
	ders := make([][]byte, len(roots))
	for i, r := range roots {
		ders[i] = r.Raw
	}
	slices.SortFunc(ders, bytes.Compare)
	ders = slices.CompactFunc(ders, bytes.Equal)
	return attest.ChainKey(ders...)
}

// verify returns the outcome of verifyRIM for data, whose SHA-256 is sum,
// under roots, whose fingerprint is rootsKey, at the time at.
func (c *rimCache) verify(data []byte, sum [32]byte, roots []*x509.Certificate, rootsKey [32]byte, at time.Time) rimOutcome {
	key := string(sum[:]) + string(rootsKey[:])
	c.mu.Lock()
	v, ok := c.entries.Get(key)
	c.mu.Unlock()
	if ok {
		if out, ok := v.outcomeAt(at); ok {
			return out
		}
	}

	v = newRIMVerification(data, roots, at)
	c.mu.Lock()
	c.entries.Put(key, v, len(data), rimCacheDeadline, at, rimCacheLimits)
	c.mu.Unlock()
	return v.outcome
}
