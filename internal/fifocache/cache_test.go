package fifocache

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var (
	now   = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	later = now.Add(time.Hour)
)

// keys returns the keys the cache holds, of key0 to key(n-1).
func keys(c *Cache[int], n int) []string {
	var held []string
	for i := range n {
		if _, ok := c.Get(fmt.Sprintf("key%d", i)); ok {
			held = append(held, fmt.Sprintf("key%d", i))
		}
	}
	return held
}

func TestPutDropsOldest(t *testing.T) {
	tests := []struct {
		name      string
		lim       Limits
		sizes     []int
		want      []string
		wantBytes int
	}{
		{"entry bound", Limits{Entries: 2, Bytes: 100}, []int{1, 1, 1}, []string{"key1", "key2"}, 2},
		{"byte bound", Limits{Entries: 10, Bytes: 25}, []int{10, 10, 10}, []string{"key1", "key2"}, 20},
		{"byte bound drops several", Limits{Entries: 10, Bytes: 25}, []int{10, 10, 20}, []string{"key2"}, 20},
		{"within bounds", Limits{Entries: 3, Bytes: 30}, []int{10, 10, 10}, []string{"key0", "key1", "key2"}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Cache[int]
			for i, size := range tt.sizes {
				if !c.Put(fmt.Sprintf("key%d", i), i, size, later, now, tt.lim) {
					t.Fatalf("Put of key%d (%d bytes) returned false", i, size)
				}
			}
			got := keys(&c, len(tt.sizes))
			if !slices.Equal(got, tt.want) {
				t.Errorf("held %v, want %v", got, tt.want)
			}
			if c.Bytes() != tt.wantBytes {
				t.Errorf("Bytes = %d, want %d", c.Bytes(), tt.wantBytes)
			}
			if c.Len() != len(tt.want) {
				t.Errorf("Len = %d, want %d", c.Len(), len(tt.want))
			}
		})
	}
}

func TestPutDropsExpired(t *testing.T) {
	var c Cache[int]
	lim := Limits{Entries: 10, Bytes: 100}
	c.Put("key0", 0, 1, now, now.Add(-time.Minute), lim)
	c.Put("key1", 1, 1, later, now, lim)
	if got := keys(&c, 2); !slices.Equal(got, []string{"key1"}) {
		t.Errorf("held %v, want only key1: key0 expired at the second Put", got)
	}
}

func TestPutTooLarge(t *testing.T) {
	var c Cache[int]
	lim := Limits{Entries: 10, Bytes: 20}
	c.Put("key0", 0, 10, later, now, lim)
	c.Put("key1", 1, 10, later, now, lim)
	if c.Put("key2", 2, 21, later, now, lim) {
		t.Error("Put of an entry larger than Limits.Bytes returned true")
	}
	if got := keys(&c, 3); !slices.Equal(got, []string{"key0", "key1"}) {
		t.Errorf("held %v, want key0 and key1 untouched", got)
	}

	// Replacing an entry by one too large removes the old entry.
	c.Put("key1", 1, 21, later, now, lim)
	if got := keys(&c, 3); !slices.Equal(got, []string{"key0"}) {
		t.Errorf("held %v after an oversized replacement, want key0", got)
	}
	if c.Bytes() != 10 {
		t.Errorf("Bytes = %d, want 10", c.Bytes())
	}
}

func TestReplaceAndDelete(t *testing.T) {
	var c Cache[int]
	lim := Limits{Entries: 3, Bytes: 100}
	c.Put("key0", 0, 5, later, now, lim)
	c.Put("key0", 7, 8, later, now, lim)
	v, ok := c.Get("key0")
	if !ok {
		t.Fatal("key0 is missing after replacement")
	}
	if v != 7 {
		t.Errorf("Get = %d after replacement, want 7", v)
	}
	if c.Bytes() != 8 {
		t.Errorf("Bytes = %d after replacement, want 8", c.Bytes())
	}

	c.Delete("key0")
	c.Delete("missing")
	if _, ok := c.Get("key0"); ok {
		t.Error("a deleted key is still held")
	}
	if c.Bytes() != 0 {
		t.Errorf("Bytes = %d after delete, want 0", c.Bytes())
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d after delete, want 0", c.Len())
	}
}

// Replacing a key behind an older entry again and again leaves its old
// positions in the order list, which Put keeps bounded.
func TestOrderBounded(t *testing.T) {
	var c Cache[int]
	lim := Limits{Entries: 4, Bytes: 100}
	c.Put("first", 0, 1, later, now, lim)
	longest := 0
	for i := range 100 {
		c.Put("key0", i, 1, later, now, lim)
		longest = max(longest, len(c.order))
	}
	if longest > 2*lim.Entries {
		t.Errorf("order reached %d keys, want at most %d", longest, 2*lim.Entries)
	}
	v, ok := c.Get("key0")
	if !ok {
		t.Fatal("key0 is missing")
	}
	if v != 99 {
		t.Errorf("Get = %d, want the last value 99", v)
	}
}
