// Package fifocache provides a map bounded by its number of entries and by
// their total size, which drops its oldest entries first. Its users keep
// entries that expire in the order they were added, such as sessions and
// tokens of one lifetime, so dropping from the front also removes the
// expired entries.
package fifocache

import "time"

// Limits bounds a Cache.
type Limits struct {
	// Entries is the maximum number of entries.
	Entries int
	// Bytes is the maximum total of the sizes given to Put.
	Bytes int
}

// Cache maps string keys to values of type V. The zero value is ready to
// use. A Cache is not safe for concurrent use, because its users hold their
// own lock so that they can read, change and put an entry in one step.
type Cache[V any] struct {
	entries map[string]entry[V]
	// order lists the keys in the order they were put. The key of a
	// deleted or replaced entry stays until it reaches the front, so Put
	// bounds the length of order too. At the front, such a key refers to
	// its replacement, which a full cache then drops early.
	order []string
	// bytes is the total size of the entries.
	bytes int
}

type entry[V any] struct {
	value    V
	size     int
	deadline time.Time
}

// Put stores value under key, replacing any entry of that key. size is its
// size in bytes, and deadline the time from which it is expired. Put first
// drops the oldest entries while they are expired at now or while the new
// entry would exceed lim. An entry larger than lim.Bytes is not stored and
// drops no other entry, and Put then returns false.
func (c *Cache[V]) Put(key string, value V, size int, deadline, now time.Time, lim Limits) bool {
	c.Delete(key)
	if size > lim.Bytes {
		return false
	}
	if c.entries == nil {
		c.entries = map[string]entry[V]{}
	}

	for len(c.order) > 0 {
		oldest, ok := c.entries[c.order[0]]
		full := len(c.entries) >= lim.Entries || len(c.order) >= 2*lim.Entries || c.bytes+size > lim.Bytes
		if ok && !full && now.Before(oldest.deadline) {
			break
		}
		c.Delete(c.order[0])
		c.order = c.order[1:]
	}

	c.entries[key] = entry[V]{value: value, size: size, deadline: deadline}
	c.bytes += size
	c.order = append(c.order, key)
	return true
}

// Get returns the value stored under key, expired or not.
func (c *Cache[V]) Get(key string) (V, bool) {
	e, ok := c.entries[key]
	return e.value, ok
}

// Delete removes the entry of key, if any.
func (c *Cache[V]) Delete(key string) {
	if e, ok := c.entries[key]; ok {
		c.bytes -= e.size
		delete(c.entries, key)
	}
}

// Len returns the number of entries.
func (c *Cache[V]) Len() int { return len(c.entries) }

// Bytes returns the total size of the entries.
func (c *Cache[V]) Bytes() int { return c.bytes }
