package mvcc

// genCacheSize bounds the generation cache: about 100 bytes per entry with
// a short key, so ~400 KiB at most. Coordination workloads write a small set
// of hot keys (leases, elections, locks, configuration) again and again;
// the cache is for those, not for bulk loads of distinct keys.
const genCacheSize = 4096

// generation is what a put needs to know of a key's latest version: whether
// it is live and, if so, its create revision and version; and what a txn's
// compare on the key's create, mod, version or lease needs. Only a put
// caches a live generation, with all four set.
type generation struct {
	create, version int64
	mod, lease      int64
	live            bool
}

// genCache remembers the latest generation of recently written keys, so a
// put of a hot key does not seek the key's newest version in Pebble (an
// iterator over the batch, the memtables and every level: ~7 % of a
// leader's CPU and ~16 % of a follower's under a put load).
//
// It is owned by the apply path: only the raft loop (a Group, through
// which every apply goes, and Restore) touches it, so it has no lock. It is written as the
// writes are added to the apply batch, so it describes the batch, not the
// committed state: every path that discards a batch holding writes must
// call reset (a request error after a partial write, a broken group, a
// restore). The physical compactor never changes a key's latest
// generation (it keeps the newest version of a live key and drops a
// tombstoned key entirely, which reads as not live either way), so it
// needs no invalidation.
type genCache struct {
	m map[string]*generation
}

// get returns the cached generation of key, if any.
func (c *genCache) get(key []byte) (generation, bool) {
	g, ok := c.m[string(key)]
	if !ok {
		return generation{}, false
	}
	return *g, true
}

// set records g as key's latest generation, evicting an arbitrary entry
// when the cache is full.
func (c *genCache) set(key []byte, g generation) {
	if p, ok := c.m[string(key)]; ok {
		*p = g
		return
	}
	if c.m == nil {
		c.m = make(map[string]*generation)
	}
	if len(c.m) >= genCacheSize {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[string(key)] = &g
}

// forget records that key is no longer live, if it is cached (a deleted key
// is not added: a delete of many keys would flush the hot ones out).
func (c *genCache) forget(key []byte) {
	if p, ok := c.m[string(key)]; ok {
		*p = generation{}
	}
}

// reset forgets everything.
func (c *genCache) reset() { clear(c.m) }
