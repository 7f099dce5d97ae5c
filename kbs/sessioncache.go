package kbs

import (
	"sync"
	"time"

	"github.com/cloister-dev/cloister/store"
)

// defaultSessionCacheSize bounds the sessions a Server keeps in memory. An
// attested session holds its token, about 6 KB for emulated SEV-SNP
// evidence, so a full cache takes about 25 MB; tokens with GPU evidence
// are several times larger. At a few hundred round
// trips per second it covers the last several seconds of sessions, and a
// guest requests its resources right after it attests.
const defaultSessionCacheSize = 4096

// sessionCache keeps the sessions this server created, so that the
// attest and resource requests that follow on the same replica need no
// store read. The store stays the authority: a session missing here is
// read from the store, as is any session another replica created.
//
// A session enters the cache at /auth after its commit and moves to
// attested after the commit of its attestation. It is removed by a later
// put once it has expired or the cache is full, and at once when its
// attestation fails to commit. Its cached state is the store's, except when
// another replica attested it. The cache then still shows it as
// challenged. An attestation of it fails at MarkAttested's state check,
// after which handleAttest reads the store, and a resource request reads
// the store for any session the cache does not show as attested.
type sessionCache struct {
	mu       sync.Mutex
	sessions map[string]store.Session
	// order holds the IDs in the order the sessions were created, which
	// is also the order they expire in while the timeout is unchanged.
	order []string
}

// put adds sess to the cache. It drops the oldest sessions while the cache is full
// or they have expired at now. The order list is bounded too, because the
// IDs of dropped sessions stay in it until they reach its front.
func (c *sessionCache) put(sess store.Session, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions == nil {
		c.sessions = map[string]store.Session{}
	}
	for len(c.order) > 0 {
		oldest, ok := c.sessions[c.order[0]]
		full := len(c.sessions) >= defaultSessionCacheSize || len(c.order) >= 2*defaultSessionCacheSize
		if ok && !full && now.Before(oldest.Expires) {
			break
		}
		delete(c.sessions, c.order[0])
		c.order = c.order[1:]
	}
	c.sessions[sess.ID] = sess
	c.order = append(c.order, sess.ID)
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

// attested records that session id was attested and issued token.
func (c *sessionCache) attested(id, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sess, ok := c.sessions[id]; ok {
		sess.State = store.SessionAttested
		sess.Token = token
		c.sessions[id] = sess
	}
}

// drop removes session id from the cache.
func (c *sessionCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, id)
}
