// Package tamper changes a stopped member's stored data while keeping every
// checksum valid, for tests of what checksums cannot catch: a history that
// differs between members (a bug, or memory corrupted before a record was
// sealed), which the corruption checks must find. It knows the mvcc layout
// (docs/architecture.md) and is for tests only.
package tamper

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/record"
)

// RewriteValue replaces old with new (of the same length) in the one stored
// version of key that holds old, in the database at dir (a member's
// data-dir/db; the member must be stopped), and reseals the record so that
// its checksum is valid. A version is stored under 0x10 + key + 0x00 0x01 +
// inverted revision; key must not contain 0x00. It fails unless exactly one
// version holds old.
func RewriteValue(dir, key, old, new string) (err error) {
	if len(old) != len(new) || bytes.IndexByte([]byte(key), 0) >= 0 {
		return fmt.Errorf("tamper: %q → %q in %q: want values of one length and a key without 0x00", old, new, key)
	}
	// The member's key layout (mvcc.SetKeyLayout): its comparer shares
	// Pebble's default comparer's name, so Pebble would take the default
	// too, but its Split decides how Pebble v2's columnar blocks store each
	// key, and with another Split every seek lands wrong.
	o := &pebble.Options{}
	mvcc.SetKeyLayout(o)
	db, err := pebble.Open(dir, o)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	lower := append(append([]byte{0x10}, key...), 0x00, 0x01)
	upper := append(append([]byte{0x10}, key...), 0x00, 0x02)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	n := 0
	for ok := it.First(); ok && err == nil; ok = it.Next() {
		var payload []byte
		if payload, err = record.Open(it.Key(), it.Value()); err != nil || !bytes.Contains(payload, []byte(old)) {
			continue
		}
		payload = bytes.Replace(payload, []byte(old), []byte(new), 1)
		err = db.Set(bytes.Clone(it.Key()), record.Seal(nil, it.Key(), payload), pebble.Sync)
		n++
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != 1 {
		err = fmt.Errorf("tamper: %d stored versions of %q hold %q, want 1", n, key, old)
	}
	return err
}
