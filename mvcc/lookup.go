package mvcc

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// lookup finds the previous versions of the keys a group's puts write
// (writer.put), with one iterator over the group's batch for the whole run
// instead of one per put. Each seek re-uses what the last one opened: with
// keys in no order every table of level 0 spans the whole key space, so a
// fresh iterator per put opened every one of them (up to
// l0CompactionFiles, server/pebble.go) and one table per lower level just to
// consult their bloom filters, which at 1 GiB was the largest single cost of
// a put on a follower (docs/performance.md, "The previous-version lookup").
//
// The iterator sees the batch as of its last refresh: before every seek it
// is refreshed (Pebble's SetOptions with unchanged options, which keeps the
// opened tables and only takes in the batch's new writes), so a lookup
// sees the writes of the entries before it in the run, as a fresh iterator
// did. The database under it is the one of the run's first lookup; only
// the raft loop writes the keyspace, and the physical compactor, which may
// run meanwhile, removes only versions that are neither a key's newest nor
// its live one, so the answer is the same.
type lookup struct {
	b      *pebble.Batch
	prefix bool // the store's prefixSeek: SeekPrefixGE and the bloom filters
	it     *pebble.Iterator
	opts   pebble.IterOptions
	seek   []byte
}

// newLookup returns the lookup of batch b; it opens its iterator on first use.
func newLookup(b *pebble.Batch, prefix bool) *lookup {
	return &lookup{b: b, prefix: prefix, opts: pebble.IterOptions{LowerBound: stateStart, UpperBound: versionEnd, UseL6Filters: prefix}}
}

// generation returns what a put of key at rev needs of the key's newest
// version below rev (visitGeneration), or a zero generation if it has none
// or its newest is a tombstone.
func (l *lookup) generation(key []byte, rev int64) (g generation, err error) {
	if l.it == nil {
		if l.it, err = l.b.NewIter(&l.opts); err != nil {
			l.it = nil
			return g, fmt.Errorf("mvcc: new iterator: %w", err)
		}
	} else {
		l.it.SetOptions(&l.opts)
	}
	l.seek = appendRev(appendVersionPrefix(l.seek[:0], key), rev)
	prefix := l.seek[:len(l.seek)-revSuffixLen]
	var found bool
	if l.prefix {
		found = l.it.SeekPrefixGE(l.seek)
	} else {
		found = l.it.SeekGE(l.seek)
	}
	if !found || !bytes.HasPrefix(l.it.Key(), prefix) {
		return g, l.it.Error()
	}
	err = visitVersion(l.it, visitGeneration(&g))
	return g, err
}

// close closes the iterator, if open; the lookup may be used again (it
// opens a new one). The batch must not be committed or closed while the
// iterator is open.
func (l *lookup) close() error {
	if l == nil || l.it == nil {
		return nil
	}
	err := l.it.Close()
	l.it = nil
	return err
}
