package kbs

import (
	"sync"
	"time"

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
// attested, and at once when its attestation fails to commit. Its cached state is the store's, except when
// another replica attested it. The cache then still shows it as
// challenged. An attestation of it fails at MarkAttested's state check,
// after which handleAttest reads the store, and a resource request reads
// the store for any session the cache does not show as attested.
type sessionCache struct {
	// maxSessions and maxTokenBytes bound the cache. Zero means
	// defaultSessionCacheSize and maxSessionCacheTokenBytes.
	maxSessions, maxTokenBytes int

	mu       sync.Mutex
	sessions map[string]store.Session
	// order holds the IDs in the order the sessions were created, which
	// is also the order they expire in while the timeout is unchanged.
	order []string
	// tokenBytes is the total length of the cached sessions' tokens.
	tokenBytes int
}

// put adds sess to the cache. It first drops the oldest sessions while
// they have expired at now or the cache would exceed its bounds.
func (c *sessionCache) put(sess store.Session, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions == nil {
		c.sessions = map[string]store.Session{}
	}
	c.dropOldest(now, 1, len(sess.Token))
	c.remove(sess.ID)
	c.sessions[sess.ID] = sess
	c.tokenBytes += len(sess.Token)
	c.order = append(c.order, sess.ID)
}

// dropOldest drops sessions from the front of the order list while the
// oldest has expired at now or is gone, or while adding more sessions and
// moreBytes of tokens would exceed a bound. The order list is bounded too,
// because the IDs of removed sessions stay in it until they reach its
// front. c.mu must be held.
func (c *sessionCache) dropOldest(now time.Time, more, moreBytes int) {
	for len(c.order) > 0 {
		oldest, ok := c.sessions[c.order[0]]
		maxSessions, maxTokenBytes := c.limits()
		full := len(c.sessions)+more > maxSessions ||
			len(c.order)+more > 2*maxSessions ||
			c.tokenBytes+moreBytes > maxTokenBytes
		if ok && !full && now.Before(oldest.Expires) {
			return
		}
		c.remove(c.order[0])
		c.order = c.order[1:]
	}
}

// limits returns the bounds of the cache.
func (c *sessionCache) limits() (maxSessions, maxTokenBytes int) {
	maxSessions, maxTokenBytes = c.maxSessions, c.maxTokenBytes
	if maxSessions <= 0 {
		maxSessions = defaultSessionCacheSize
	}
	if maxTokenBytes <= 0 {
		maxTokenBytes = maxSessionCacheTokenBytes
	}
	return maxSessions, maxTokenBytes
}

// remove deletes session id from the map, not from the order list. c.mu
// must be held.
func (c *sessionCache) remove(id string) {
	if sess, ok := c.sessions[id]; ok {
		c.tokenBytes -= len(sess.Token)
		delete(c.sessions, id)
	}
}

// get returns the session id unless it is absent or expired at now, by the
// store's rule: a session is expired from its expiry time on.
func (c *sessionCache) get(id string, now time.Time) (store.Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sess, ok := c.sessions[id]
	if !ok || !now.Before(sess.Expires) {
		return store.Session{}, false
	}
	return sess, true
}

// attested records that session id was attested and issued token. When
// the token does not fit within the byte bound, older sessions are dropped
// first, and the session itself if it still does not fit.
func (c *sessionCache) attested(id, token string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sess, ok := c.sessions[id]
	if !ok {
		return
	}
	c.dropOldest(now, 0, len(token)-len(sess.Token))
	sess, ok = c.sessions[id]
	if !ok {
		return
	}
	if _, maxTokenBytes := c.limits(); c.tokenBytes-len(sess.Token)+len(token) > maxTokenBytes {
		c.remove(id)
		return
	}
	c.tokenBytes += len(token) - len(sess.Token)
	sess.State = store.SessionAttested
	sess.Token = token
	c.sessions[id] = sess
}

// drop removes session id from the cache.
func (c *sessionCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(id)
}
