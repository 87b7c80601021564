package storage

import "go.etcd.io/raft/v3/raftpb"

// Default bounds of the tail cache.
const (
	defaultCacheEntries = 1024
	defaultCacheBytes   = 4 << 20
)

// cachedEntry is an entry with its encoded size (proto.Size).
type cachedEntry struct {
	e    *raftpb.Entry
	size uint64
}

// tailCache holds a contiguous run of the most recently saved entries, always
// ending at the store's last index when non-empty. It is a fixed-capacity ring,
// bounded by entry count and total encoded size. Entries are shared with the
// caller of Save and never mutated. tailCache is not synchronised; LogStore
// guards it.
type tailCache struct {
	ring     []cachedEntry
	head     int    // ring position of the oldest entry
	n        int    // number of cached entries
	first    uint64 // index of the oldest entry; meaningful when n > 0
	bytes    uint64 // total size of cached entries
	maxBytes uint64
}

func newTailCache(maxEntries int, maxBytes uint64) *tailCache {
	return &tailCache{ring: make([]cachedEntry, maxEntries), maxBytes: maxBytes}
}

// get returns the cached entry at index i, if present.
func (c *tailCache) get(i uint64) (cachedEntry, bool) {
	if c.n == 0 || i < c.first || i-c.first >= uint64(c.n) {
		return cachedEntry{}, false
	}
	return c.ring[c.pos(int(i-c.first))], true
}

// lowest returns the lowest cached index, or false when the cache is empty.
func (c *tailCache) lowest() (uint64, bool) {
	return c.first, c.n > 0
}

func (c *tailCache) pos(k int) int {
	return (c.head + k) % len(c.ring)
}

// push appends e, which must follow the newest cached entry (otherwise the
// cache restarts at e), then evicts the oldest entries beyond the bounds. An
// entry larger than the byte bound is not kept at all.
func (c *tailCache) push(e *raftpb.Entry, size uint64) {
	if len(c.ring) == 0 {
		return
	}
	if c.n > 0 && e.GetIndex() != c.first+uint64(c.n) {
		c.reset()
	}
	if c.n == len(c.ring) {
		c.popFront()
	}
	if c.n == 0 {
		c.first = e.GetIndex()
	}
	c.ring[c.pos(c.n)] = cachedEntry{e: e, size: size}
	c.n++
	c.bytes += size
	for c.n > 0 && c.bytes > c.maxBytes {
		c.popFront()
	}
}

// popFront evicts the oldest entry.
func (c *tailCache) popFront() {
	c.bytes -= c.ring[c.head].size
	c.ring[c.head] = cachedEntry{}
	c.head = c.pos(1)
	c.first++
	c.n--
}

// popBack evicts the newest entry.
func (c *tailCache) popBack() {
	p := c.pos(c.n - 1)
	c.bytes -= c.ring[p].size
	c.ring[p] = cachedEntry{}
	c.n--
}

// truncateFrom evicts every entry with index >= i.
func (c *tailCache) truncateFrom(i uint64) {
	for c.n > 0 && c.first+uint64(c.n)-1 >= i {
		c.popBack()
	}
}

// dropBefore evicts every entry with index < i.
func (c *tailCache) dropBefore(i uint64) {
	for c.n > 0 && c.first < i {
		c.popFront()
	}
}

// reset empties the cache.
func (c *tailCache) reset() {
	for c.n > 0 {
		c.popFront()
	}
	c.head = 0
}
