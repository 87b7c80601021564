package consulkv

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Entry is one Consul KV pair, in the shape Consul's server sends it
// (api.KVPair reads it): its indexes are the value key's create and mod
// revisions.
type Entry struct {
	LockIndex   uint64
	Key         string
	Flags       uint64
	Value       []byte
	Session     string `json:",omitempty"`
	CreateIndex uint64
	ModifyIndex uint64

	dirty   bool // changed by this view: ModifyIndex is the commit's revision
	created bool // created by this view: so is CreateIndex
}

// Meta is what Consul keeps beside a value, stored as JSON at MetaKey;
// an entry whose Meta is all zero has no MetaKey.
type Meta struct {
	Flags     uint64 `json:",omitempty"`
	Session   string `json:",omitempty"`
	LockIndex uint64 `json:",omitempty"`
}

// Stored is an entry as the store holds it: the value key's value and
// revisions, and the metadata key's value (nil when absent).
type Stored struct {
	Key       string
	Value     []byte
	CreateRev int64
	ModRev    int64
	Meta      []byte
}

// Decode builds the entry of a stored value and its metadata.
func Decode(st Stored) (*Entry, error) {
	e := &Entry{Key: st.Key, CreateIndex: uint64(st.CreateRev), ModifyIndex: uint64(st.ModRev)}
	if len(st.Value) > 0 {
		e.Value = st.Value
	}
	if len(st.Meta) > 0 {
		var m Meta
		if err := json.Unmarshal(st.Meta, &m); err != nil {
			return nil, fmt.Errorf("consulkv: metadata of %q: %w", st.Key, err)
		}
		e.Flags, e.Session, e.LockIndex = m.Flags, m.Session, m.LockIndex
	}
	return e, nil
}

// meta is the entry's metadata document, nil when all zero.
func (e *Entry) meta() []byte {
	m := Meta{Flags: e.Flags, Session: e.Session, LockIndex: e.LockIndex}
	if m == (Meta{}) {
		return nil
	}
	b, _ := json.Marshal(m) // a struct of plain fields always marshals
	return b
}

// clone copies e (sharing its value, which is never mutated).
func (e *Entry) clone() *Entry {
	c := *e
	return &c
}

// same reports whether a and b hold the same data (Consul's
// DirEntry.Equal: indexes aside).
func same(a, b *Entry) bool {
	return a.LockIndex == b.LockIndex && a.Key == b.Key && a.Flags == b.Flags &&
		a.Session == b.Session && bytes.Equal(a.Value, b.Value)
}

// Finish gives entries written by a committed view their indexes: rev is
// the commit's revision.
func Finish(rev int64, entries []*Entry) {
	for _, e := range entries {
		if e.dirty {
			e.ModifyIndex = uint64(rev)
		}
		if e.created {
			e.CreateIndex = uint64(rev)
		}
	}
}
