package consulkv

import (
	"sort"
	"strings"
)

// View is the part of the KV store a request reads, at one revision, with
// the changes its operations made so far. Operations (Apply) change the
// view; Plan turns the changes into one etcd transaction whose compares
// hold exactly when nothing the view read has changed since.
type View struct {
	rev        int64
	cur        map[string]*Entry // by Consul key; nil: known to be absent
	orig       map[string]*Entry
	metaStored map[string]bool
	trees      map[string]bool  // prefixes read whole
	sessions   map[string]int64 // session id → create revision of its key (0: not alive)
	delayed    map[string]bool  // keys read for a lock delay: true when one is on
	tombs      map[string]bool  // tree tombstones to write
	drops      map[string]bool  // lock records to delete although no entry says so
	mustBeDead string           // a session whose death the commit compares (Invalidate)
}

// NewView is an empty view read at revision rev.
func NewView(rev int64) *View {
	return &View{rev: rev, cur: map[string]*Entry{}, orig: map[string]*Entry{}, metaStored: map[string]bool{},
		trees: map[string]bool{}, sessions: map[string]int64{}, delayed: map[string]bool{},
		tombs: map[string]bool{}, drops: map[string]bool{}}
}

// Rev is the revision the view was read at.
func (v *View) Rev() int64 { return v.rev }

// AddKey records what was read of key k: its entry (nil when absent) and
// whether a metadata key is stored for it.
func (v *View) AddKey(k string, e *Entry, metaStored bool) {
	v.cur[k], v.orig[k] = e, e
	v.metaStored[k] = metaStored
}

// AddTree records that every key under prefix p was read (with AddKey).
func (v *View) AddTree(p string) { v.trees[p] = true }

// AddSession records whether session id is alive: createRev is its key's
// create revision, 0 when it is not.
func (v *View) AddSession(id string, createRev int64) { v.sessions[id] = createRev }

// AddDelay records whether key k is under a lock delay.
func (v *View) AddDelay(k string, on bool) { v.delayed[k] = on }

// Entry is the current entry of k in the view (nil when absent or unread).
func (v *View) Entry(k string) *Entry { return v.cur[k] }

// under lists the present keys under prefix p, sorted.
func (v *View) under(p string) []string {
	var ks []string
	for k, e := range v.cur {
		if e != nil && strings.HasPrefix(k, p) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

// put replaces k's entry with e, which the commit will write.
func (v *View) put(e *Entry) *Entry {
	old := v.cur[e.Key]
	e.dirty = true
	e.created = old == nil || old.created
	if old != nil && !old.created {
		e.CreateIndex = old.CreateIndex
	}
	v.cur[e.Key] = e
	return e
}

// remove deletes k from the view.
func (v *View) remove(k string) { v.cur[k] = nil }
