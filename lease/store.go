package lease

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/synod-db/synod/record"
)

// Prefix is the key prefix of lease records in the member's database
// (docs/architecture.md): Prefix + ID (8 BE) → sealed TTL (8 BE) + renewal
// index (8 BE). It is >= 0x20, so records are written through
// mvcc.Group.ApplyOther / ApplyWith (by package statemachine) and carried
// by raft snapshots.
const Prefix byte = 0x30

// recordLen is the length of a record's payload, keyLen that of its key.
const (
	recordLen = 16
	keyLen    = 9
)

// Key returns the database key of lease id's record.
func Key(id int64) []byte {
	k := make([]byte, keyLen)
	putKey(k, id)
	return k
}

// putKey writes the key of lease id's record into k (keyLen bytes).
func putKey(k []byte, id int64) {
	k[0] = Prefix
	binary.BigEndian.PutUint64(k[1:], uint64(id))
}

// putRecord writes r's key into key (keyLen bytes) and its sealed value
// into sealed (record.HeaderSize + recordLen bytes).
func putRecord(key, sealed []byte, r Record) {
	putKey(key, r.ID)
	binary.BigEndian.PutUint64(sealed[record.HeaderSize:], uint64(r.TTL))
	binary.BigEndian.PutUint64(sealed[record.HeaderSize+8:], r.RenewIndex)
	record.SealInPlace(key, sealed)
}

// decode verifies a stored record.
func decode(k, v []byte) (Record, error) {
	if len(k) != keyLen || k[0] != Prefix {
		return Record{}, fmt.Errorf("%w: lease: malformed key %x", record.ErrCorrupt, k)
	}
	p, err := record.Open(k, v)
	if err != nil {
		return Record{}, err
	}
	if len(p) != recordLen {
		return Record{}, fmt.Errorf("%w: lease: record %x: %d bytes, want %d", record.ErrCorrupt, k, len(p), recordLen)
	}
	return Record{
		ID:         int64(binary.BigEndian.Uint64(k[1:])),
		TTL:        int64(binary.BigEndian.Uint64(p)),
		RenewIndex: binary.BigEndian.Uint64(p[8:]),
	}, nil
}

// Write adds the record writes of c to b: every put record (built in
// place in the batch, as a renewal writes one per lease), then the deletion
// of every removed lease. The attached keys are the caller's to delete (in
// the mvcc revision of the same batch).
func (c Change) Write(b *pebble.Batch) error {
	for _, r := range c.Put {
		op := b.SetDeferred(keyLen, record.HeaderSize+recordLen)
		putRecord(op.Key, op.Value, r)
		if err := op.Finish(); err != nil {
			return fmt.Errorf("lease: write record: %w", err)
		}
	}
	for _, id := range c.Remove {
		if err := b.Delete(Key(id), nil); err != nil {
			return fmt.Errorf("lease: delete record: %w", err)
		}
	}
	return nil
}

// Reader is what ReadRecords reads from: *pebble.DB, *pebble.Snapshot or
// *pebble.Batch.
type Reader interface {
	// NewIter returns an iterator over the reader's keys.
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// ReadRecords returns every stored lease record, in key order. A record that
// fails its checksum is a wrapped record.ErrCorrupt.
func ReadRecords(r Reader) (recs []Record, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{Prefix}, UpperBound: []byte{Prefix + 1}})
	if err != nil {
		return nil, fmt.Errorf("lease: new iterator: %w", err)
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("lease: iterator: %w", cerr)
		}
	}()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("lease: read record: %w", err)
		}
		rec, err := decode(it.Key(), v)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}
