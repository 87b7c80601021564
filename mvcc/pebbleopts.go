package mvcc

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// bloomBitsPerKey sizes the sstables' bloom filters: 10 bits per user key,
// a 1 % false-positive rate, about 1.2 bytes per key on disk and, when
// read, in the block cache.
const bloomBitsPerKey = 10

// tableCompression is the block compression of every table a Store's
// database writes, flushed, compacted or built from a received snapshot:
// Pebble's fastest profile, MinLZ on amd64 (Snappy on arm64, where MinLZ has
// no assembly). Compactions dominate a member's CPU once the store outgrows
// its memtables, and a quarter of them was Snappy's encoding and decoding
// of the same blocks; MinLZ does that work in less time at a like ratio
// (docs/performance.md, "The put at size"). Readers need nothing: a block
// names its own compression, and tables of either kind mix in one database
// (TableFormatPebblev6, the oldest format synod writes, reads MinLZ).
var tableCompression = sstable.FastestCompression

// SetKeyLayout sets on o what a database holding a Store is written with:
// Comparer, whose Split names a version key's user key; a bloom filter over
// user keys on every level, which a put's previous-version lookup consults
// (visitKey); and the block compression (tableCompression). Every opener of
// a synod database must use it — the member, the simulation, tools: Pebble
// v2's columnar blocks store keys split by the comparer's Split, and a
// database opened with another comparer of the same name would misread
// them.
func SetKeyLayout(o *pebble.Options) {
	o.Comparer = Comparer
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
		o.Levels[i].FilterType = pebble.TableFilter
		o.Levels[i].Compression = func() *sstable.CompressionProfile { return tableCompression }
	}
}
