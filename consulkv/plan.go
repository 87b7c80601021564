package consulkv

import (
	"maps"
	"slices"
	"strconv"
)

// Write is one etcd write of a plan: a put of Value at Key, or a delete.
type Write struct {
	Key    string
	Value  []byte
	Delete bool
}

// Compare is one etcd compare of a plan: the key's (or, with Prefix, every
// key under it's) create or mod revision against Rev with Op ("=" or "<").
type Compare struct {
	Key    string
	Create bool // compare the create revision, else the mod revision
	Op     string
	Rev    int64
	Prefix bool
}

// Plan is the transaction that commits a view's changes: it succeeds only
// if the compares hold, that is if nothing the view read has changed.
type Plan struct {
	Compares []Compare
	Writes   []Write
}

// Empty reports whether the plan writes nothing (the view only read).
func (p Plan) Empty() bool { return len(p.Writes) == 0 }

// Plan is the transaction of the view's changes; now (Unix seconds) is
// written into tombstones, for their reaping.
func (v *View) Plan(now int64) Plan {
	writes := map[string]Write{}
	add := func(w Write) { writes[w.Key] = w }
	stamp := []byte(strconv.FormatInt(now, 10))
	for _, k := range sortedKeys(v.cur) {
		o, n := v.orig[k], v.cur[k]
		switch {
		case n == nil && o != nil:
			add(Write{Key: ValueKey(k), Delete: true})
			if v.metaStored[k] {
				add(Write{Key: MetaKey(k), Delete: true})
			}
			add(Write{Key: TombKey(k), Value: stamp})
		case n != nil && n.dirty:
			add(Write{Key: ValueKey(k), Value: nonNil(n.Value)})
			if m := n.meta(); m != nil {
				add(Write{Key: MetaKey(k), Value: m})
			} else if v.metaStored[k] {
				add(Write{Key: MetaKey(k), Delete: true})
			}
		}
		lockWrites(k, o, n, add)
	}
	for p := range v.tombs {
		add(Write{Key: TombKey(p), Value: stamp})
	}
	for lk := range v.drops {
		add(Write{Key: lk, Delete: true})
	}
	if len(writes) > 0 {
		add(Write{Key: IndexKey, Value: []byte{}})
	}
	p := Plan{Compares: v.compares()}
	for _, k := range sortedKeys(writes) {
		p.Writes = append(p.Writes, writes[k])
	}
	return p
}

// lockWrites keeps the session's lock records in step with the entry's
// session.
func lockWrites(k string, o, n *Entry, add func(Write)) {
	var was, is string
	if o != nil {
		was = o.Session
	}
	if n != nil {
		is = n.Session
	}
	if was == is {
		return
	}
	if was != "" {
		add(Write{Key: LockKey(was, k), Delete: true})
	}
	if is != "" {
		add(Write{Key: LockKey(is, k), Value: []byte{}})
	}
}

// compares are the plan's conditions: every key read is as read, no key
// was added under a prefix read whole, every session a lock used is still
// the one read, every key locked has no lock delay, and the session being
// invalidated is dead.
func (v *View) compares() []Compare {
	var cs []Compare
	for _, k := range sortedKeys(v.orig) {
		var rev int64
		if e := v.orig[k]; e != nil {
			rev = int64(e.ModifyIndex)
		}
		cs = append(cs, Compare{Key: ValueKey(k), Op: "=", Rev: rev})
	}
	for _, p := range sortedKeys(v.trees) {
		cs = append(cs, Compare{Key: ValueKey(p), Op: "<", Rev: v.rev + 1, Prefix: true})
	}
	for _, id := range sortedKeys(v.sessions) {
		cs = append(cs, Compare{Key: SessionKey(id), Create: true, Op: "=", Rev: v.sessions[id]})
	}
	for _, k := range sortedKeys(v.delayed) {
		if !v.delayed[k] {
			cs = append(cs, Compare{Key: DelayKey(k), Create: true, Op: "=", Rev: 0})
		}
	}
	if v.mustBeDead != "" {
		cs = append(cs, Compare{Key: SessionKey(v.mustBeDead), Create: true, Op: "=", Rev: 0})
	}
	return cs
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
