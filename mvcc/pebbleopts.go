package mvcc

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// bloomBitsPerKey sizes the sstables' bloom filters: 10 bits per user key,
// a 1 % false-positive rate, about 1.2 bytes per key on disk and, when
// read, in the block cache.
const bloomBitsPerKey = 10

// SetKeyLayout sets on o what a database holding a Store is written with:
// Comparer, whose Split names a version key's user key, and a bloom filter
// over user keys on every level, which a put's previous-version lookup
// consults (visitKey). Every opener of a synod database must use it — the
// member, the simulation, tools: Pebble v2's columnar blocks store keys
// split by the comparer's Split, and a database opened with another
// comparer of the same name would misread them.
func SetKeyLayout(o *pebble.Options) {
	o.Comparer = Comparer
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
		o.Levels[i].FilterType = pebble.TableFilter
	}
}
