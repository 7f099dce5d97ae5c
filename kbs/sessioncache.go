package kbs

import (
	"sync"
	"time"

	"github.com/cloister-dev/cloister/internal/fifocache"
	"github.com/cloister-dev/cloister/store"
)

// defaultSessionCacheSize bounds the sessions a Server keeps in memory. At
// a few hundred round trips per second it covers the last several seconds
// of sessions, and a guest requests its resources right after it attests.
const defaultSessionCacheSize = 4096

// maxSessionCacheTokenBytes bounds the bytes of the tokens that cached
// sessions hold. A token for emulated SEV-SNP evidence is about 6 KB, so
// the session count is the bound for such guests. A token carries the
// claims of all the evidence, so device evidence makes it larger.
const maxSessionCacheTokenBytes = 32 << 20

// sessionCache keeps the sessions this server created, so that the
// attest and resource requests that follow on the same replica need no
// store read. The store stays the authority: a session missing here is
// read from the store, as is any session another replica created.
//
// A session enters the cache at /auth after its commit and moves to
// attested after the commit of its attestation. It is removed once it has
// expired or the cache is full, when a later session enters or is
// attested, and at once when its attestation fails to commit.
//
// Its cached state is the store's, except when another replica attested
// it. The cache then still shows it as challenged. An attestation of it
// fails at MarkAttested's state check, after which handleAttest reads the
// store, and a resource request reads the store for any session the cache
// does not show as attested.
type sessionCache struct {
	// maxSessions and maxTokenBytes bound the cache. Zero means
	// defaultSessionCacheSize and maxSessionCacheTokenBytes.
	maxSessions, maxTokenBytes int

	mu sync.Mutex
	// sessions contains the sessions by ID, each sized by its token.
	sessions fifocache.Cache[store.Session]
}

// put adds sess to the cache. It first drops the oldest sessions while
// they have expired at now or the cache would exceed its bounds.
func (c *sessionCache) put(sess store.Session, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions.Put(sess.ID, sess, len(sess.Token), sess.Expires, now, c.limits())
}

// limits returns the bounds of the cache.
func (c *sessionCache) limits() fifocache.Limits {
	lim := fifocache.Limits{Entries: c.maxSessions, Bytes: c.maxTokenBytes}
	if lim.Entries <= 0 {
		lim.Entries = defaultSessionCacheSize
	}
	if lim.Bytes <= 0 {
		lim.Bytes = maxSessionCacheTokenBytes
	}
	return lim
}

// get returns the session id unless it is absent or expired at now, by the
// store's rule: a session is expired from its expiry time on.
func (c *sessionCache) get(id string, now time.Time) (store.Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sess, ok := c.sessions.Get(id)
	if !ok || !now.Before(sess.Expires) {
		return store.Session{}, false
	}
	return sess, true
}

// attested records that session id was attested and issued token. Older
// sessions are dropped first when the token does not fit within the byte
// bound, and the session itself when the token alone exceeds it.
func (c *sessionCache) attested(id, token string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sess, ok := c.sessions.Get(id)
	if !ok {
		return
	}
	sess.State = store.SessionAttested
	sess.Token = token
	c.sessions.Put(id, sess, len(token), sess.Expires, now, c.limits())
}

// drop removes session id from the cache.
func (c *sessionCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions.Delete(id)
}
