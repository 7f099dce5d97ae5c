package kbs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/store"
)

var cacheNow = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func cachedSession(i int) store.Session {
	return store.Session{ID: fmt.Sprintf("session-%d", i), State: store.SessionChallenged, Expires: cacheNow.Add(time.Minute)}
}

// present returns the IDs of the sessions the cache returns, of those
// numbered 0 to n-1.
func present(c *sessionCache, n int) []string {
	var ids []string
	for i := range n {
		if _, ok := c.get(cachedSession(i).ID, cacheNow); ok {
			ids = append(ids, cachedSession(i).ID)
		}
	}
	return ids
}

func TestSessionCacheDropsOldestWhenFull(t *testing.T) {
	c := &sessionCache{maxSessions: 3}
	for i := range 5 {
		c.put(cachedSession(i), cacheNow)
	}
	got := strings.Join(present(c, 5), " ")
	if want := "session-2 session-3 session-4"; got != want {
		t.Errorf("cached %q, want %q", got, want)
	}
}

func TestSessionCacheDropsExpired(t *testing.T) {
	c := &sessionCache{}
	old := cachedSession(0)
	old.Expires = cacheNow.Add(-time.Second)
	c.put(old, cacheNow.Add(-time.Minute))
	c.put(cachedSession(1), cacheNow)
	if _, ok := c.sessions.Get(old.ID); ok {
		t.Error("an expired session stayed in the cache after a later put")
	}
	if _, ok := c.get(cachedSession(1).ID, cacheNow); !ok {
		t.Error("the new session is missing")
	}
}

func TestSessionCacheBoundsTokenBytes(t *testing.T) {
	c := &sessionCache{maxTokenBytes: 250}
	for i := range 3 {
		c.put(cachedSession(i), cacheNow)
	}
	for i := range 3 {
		c.attested(cachedSession(i).ID, strings.Repeat("t", 100), cacheNow)
	}

	// The third token of 100 bytes does not fit beside two others, so the
	// oldest session goes.
	got := strings.Join(present(c, 3), " ")
	if want := "session-1 session-2"; got != want {
		t.Errorf("cached %q, want %q", got, want)
	}
	if n := c.sessions.Bytes(); n != 200 {
		t.Errorf("token bytes = %d, want 200", n)
	}
	sess, ok := c.get(cachedSession(2).ID, cacheNow)
	if !ok {
		t.Fatal("session-2 is missing")
	}
	if sess.State != store.SessionAttested {
		t.Errorf("session-2 state = %s, want %s", sess.State, store.SessionAttested)
	}
	if len(sess.Token) != 100 {
		t.Errorf("session-2 token is %d bytes, want 100", len(sess.Token))
	}
}

func TestSessionCacheDropsTokenTooLarge(t *testing.T) {
	c := &sessionCache{maxTokenBytes: 50}
	c.put(cachedSession(0), cacheNow)
	c.attested(cachedSession(0).ID, strings.Repeat("t", 51), cacheNow)
	if _, ok := c.get(cachedSession(0).ID, cacheNow); ok {
		t.Error("a session whose token exceeds the byte bound stayed in the cache")
	}
	if n := c.sessions.Bytes(); n != 0 {
		t.Errorf("token bytes = %d, want 0", n)
	}
}

func TestSessionCacheDropCountsBytes(t *testing.T) {
	c := &sessionCache{}
	c.put(cachedSession(0), cacheNow)
	c.attested(cachedSession(0).ID, "token", cacheNow)
	c.drop(cachedSession(0).ID)
	if n := c.sessions.Bytes(); n != 0 {
		t.Errorf("token bytes = %d after drop, want 0", n)
	}
	if _, ok := c.get(cachedSession(0).ID, cacheNow); ok {
		t.Error("a dropped session is still returned")
	}
}
