package collateral

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"golang.org/x/sync/singleflight"
)

// Entry is one cached upstream response.
type Entry struct {
	// Key identifies the item independently of the upstream's address
	// ("kds/vcek/Milan/<hwid>/<tcb>", "pcs/tdx/tcb/<FMSPC>").
	Key string `json:"key"`
	// URL is the address the item was fetched from.
	URL string `json:"url"`
	// Body is the response body. Headers holds the issuer chains that
	// Intel PCS sends in headers, as PEM.
	Body    []byte            `json:"body"`
	Headers map[string]string `json:"headers,omitempty"`
	// FetchedAt is when the item was fetched.
	FetchedAt time.Time `json:"fetched_at"`
	// NextUpdate is when the item stops being valid: a CRL's, TCB Info's
	// or QE Identity's nextUpdate, a certificate's notAfter. Zero means
	// the item states none.
	NextUpdate time.Time `json:"next_update"`
}

// Backend stores cache entries: a directory for the CLI, the service's
// database so that replicas share one copy.
type Backend interface {
	// Get returns the entry for key, or nil and no error when absent.
	Get(ctx context.Context, key string) (*Entry, error)
	Put(ctx context.Context, e *Entry) error
	List(ctx context.Context) ([]*Entry, error)
}

// Cache keeps upstream collateral with this freshness model:
//
//   - An entry is fresh until its refresh time: FetchedAt plus the smaller
//     of MaxAge and 80% of its validity (NextUpdate minus FetchedAt). A
//     fresh entry is served without asking the upstream; in the last fifth
//     of that window a hit also starts a background refresh.
//   - After the refresh time the entry is fetched again. When the upstream
//     fails, the old entry is served for at most Grace after its refresh
//     time, and never when the verification time is past its NextUpdate.
//   - Concurrent requests for one key share a single upstream fetch.
//
// A failed fetch is never stored.
type Cache struct {
	Backend Backend
	// MaxAge bounds how long an entry is served without a refresh
	// (default 24h).
	MaxAge time.Duration
	// Grace is how long past its refresh time an entry may be served while
	// the upstream fails (default 1h; negative disables it).
	Grace time.Duration
	// Logger receives background refresh failures (default slog.Default()).
	Logger *slog.Logger
	// Now returns the current time (default time.Now), for tests.
	Now func() time.Time

	group singleflight.Group
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cache) maxAge() time.Duration {
	if c.MaxAge <= 0 {
		return 24 * time.Hour
	}
	return c.MaxAge
}

func (c *Cache) grace() time.Duration {
	switch {
	case c.Grace < 0:
		return 0
	case c.Grace == 0:
		return time.Hour
	}
	return c.Grace
}

func (c *Cache) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// refreshAt returns when e stops being fresh.
func (c *Cache) refreshAt(e *Entry) time.Time {
	age := c.maxAge()
	if !e.NextUpdate.IsZero() {
		if v := e.NextUpdate.Sub(e.FetchedAt) * 4 / 5; v < age {
			age = v
		}
	}
	return e.FetchedAt.Add(age)
}

// validAt reports whether e may serve a verification at time at.
func validAt(e *Entry, at time.Time) bool {
	return e.NextUpdate.IsZero() || at.Before(e.NextUpdate)
}

// FetchFunc fetches an entry from the upstream.
type FetchFunc func(ctx context.Context) (*Entry, error)

// Get returns the entry for key, fetching it with fetch when it is absent
// or no longer fresh. at is the verification time the entry will serve.
func (c *Cache) Get(ctx context.Context, key string, at time.Time, fetch FetchFunc) (*Entry, error) {
	cached, err := c.Backend.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("collateral cache: reading %s: %w", key, err)
	}
	now := c.now()
	if cached != nil {
		cached = c.checkCached(key, cached, now)
	}
	if cached != nil && now.Before(c.refreshAt(cached)) && validAt(cached, at) {
		cacheEvents.WithLabelValues(hostOf(cached.URL), "hit").Inc()
		fresh := c.refreshAt(cached).Sub(cached.FetchedAt)
		if now.After(c.refreshAt(cached).Add(-fresh / 5)) {
			c.refreshInBackground(key, fetch)
		}
		return cached, nil
	}

	fetched, err := c.fetchShared(ctx, key, fetch)
	if err == nil {
		result := "miss"
		if cached != nil {
			result = "refresh"
		}
		cacheEvents.WithLabelValues(hostOf(fetched.URL), result).Inc()
		return fetched, nil
	}
	if cached != nil && !errors.Is(err, ErrNotFound) &&
		now.Before(c.refreshAt(cached).Add(c.grace())) && validAt(cached, at) {
		cacheEvents.WithLabelValues(hostOf(cached.URL), "stale").Inc()
		c.logger().Warn("collateral upstream failed, serving cached item within grace",
			"key", key, "fetched_at", cached.FetchedAt, "next_update", cached.NextUpdate, "error", err)
		return cached, nil
	}
	return nil, err
}

// checkCached returns a copy of the cached entry e for Get to use, or nil
// when its fetch time is after now or its body contains no collateral, so
// that the item is fetched again. A backend stores FetchedAt and NextUpdate
// beside the body, and they can be wrong: a clock that was set ahead at
// fetch time, an entry written by another program, an imported bundle. So
// the NextUpdate that the body states bounds the stored one.
//
// NOTE: the body is parsed on every Get, because no in-memory layer keeps
// the entries that were already checked. Online parses it once more when it
// adds the entry to the Set it returns.
func (c *Cache) checkCached(key string, e *Entry, now time.Time) *Entry {
	if e.FetchedAt.After(now) {
		c.logger().Warn("cached collateral item has a fetch time after the current time, fetching it again",
			"key", key, "fetched_at", e.FetchedAt, "now", now)
		return nil
	}
	s := &Set{}
	if n, reason := s.AddBytes(e.URL, e.Body); n == 0 {
		c.logger().Warn("cached collateral item contains no collateral, fetching it again", "key", key, "reason", reason)
		return nil
	}
	out := *e
	if next := s.nextUpdate(); !next.IsZero() && (out.NextUpdate.IsZero() || next.Before(out.NextUpdate)) {
		out.NextUpdate = next
	}
	return &out
}

// sharedFetchTimeout bounds one upstream fetch with all its retries. A
// fetch serves every caller that requests the key meanwhile, so it runs
// under this bound rather than under the context of the caller that
// started it.
const sharedFetchTimeout = 2 * time.Minute

// fetchShared fetches key once for all concurrent callers and stores it.
// Each caller waits only as long as its own context allows, and a caller
// that gives up does not cancel the fetch for the others.
func (c *Cache) fetchShared(ctx context.Context, key string, fetch FetchFunc) (*Entry, error) {
	done := c.group.DoChan(key, func() (any, error) {
		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedFetchTimeout)
		defer cancel()
		e, err := fetch(fetchCtx)
		if err != nil {
			return nil, err
		}
		e.Key = key
		if e.FetchedAt.IsZero() {
			e.FetchedAt = c.now()
		}
		if err := c.Backend.Put(fetchCtx, e); err != nil {
			return nil, fmt.Errorf("collateral cache: storing %s: %w", key, err)
		}
		return e, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("collateral cache: waiting for the fetch of %s: %w", key, ctx.Err())
	case r := <-done:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Entry), nil
	}
}

func (c *Cache) refreshInBackground(key string, fetch FetchFunc) {
	go func() {
		if _, err := c.fetchShared(context.Background(), key, fetch); err != nil {
			c.logger().Warn("collateral background refresh failed", "key", key, "error", err)
		}
	}()
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "unknown"
	}
	return u.Host
}
