package catalog

import (
	"bytes"
	"encoding/json"
	"sort"
)

// Write is one key of a transaction: a put of Value, or a delete.
type Write struct {
	Key    string
	Value  []byte
	Delete bool
	// Indexes are the index keys this write makes stale: the transaction
	// that carries the write puts each of them, so their mod revisions move.
	Indexes []string
}

// Diff returns the writes that turn the stored state old into new, in a
// stable order: only documents whose stored form changed, so a check
// update that changes neither status nor output writes nothing.
func Diff(old, new *NodeState) []Write {
	var out []Write
	node := old.Name
	out = append(out, diffDoc(NodeKey(node), docOf(old.Node), docOf(new.Node), IndexNodes, NodeCheckIndexKey(node))...)
	for _, id := range unionKeys(old.Services, new.Services) {
		o, n := old.Services[id], new.Services[id]
		out = append(out, diffService(node, id, o, n)...)
	}
	for _, id := range unionKeys(old.Checks, new.Checks) {
		o, n := old.Checks[id], new.Checks[id]
		idx := append(checkIndexes(node, o), checkIndexes(node, n)...)
		out = append(out, diffDoc(CheckKey(node, id), docOf(o), docOf(n), idx...)...)
	}
	return out
}

func diffService(node, id string, o, n *Service) []Write {
	var idx []string
	for _, s := range []*Service{o, n} {
		if s != nil {
			idx = append(idx, IndexServices, NameIndexKey(s.Service))
		}
	}
	ov, nv := docOf(o), docOf(n)
	out := diffDoc(ServiceKey(node, id), ov, nv, idx...)
	if len(out) == 0 {
		return nil
	}
	if o != nil && (n == nil || o.Service != n.Service) {
		out = append(out, Write{Key: ByNameKey(o.Service, node, id), Delete: true, Indexes: idx})
	}
	if n != nil {
		out = append(out, Write{Key: ByNameKey(n.Service, node, id), Value: nv, Indexes: idx})
	}
	return out
}

func checkIndexes(node string, c *Check) []string {
	if c == nil {
		return nil
	}
	if c.ServiceID == "" {
		return []string{IndexChecks, NodeCheckIndexKey(node)}
	}
	return []string{IndexChecks, NameIndexKey(c.ServiceName)}
}

func diffDoc(key string, old, new []byte, indexes ...string) []Write {
	switch {
	case bytes.Equal(old, new):
		return nil
	case new == nil:
		return []Write{{Key: key, Delete: true, Indexes: indexes}}
	default:
		return []Write{{Key: key, Value: new, Indexes: indexes}}
	}
}

// docOf is the stored form of a document: its JSON without the indexes,
// which are the key's revisions; nil for a missing document.
func docOf[T any](v *T) []byte {
	if v == nil {
		return nil
	}
	c := cloneJSON(v)
	switch d := any(c).(type) {
	case *Node:
		d.CreateIndex, d.ModifyIndex = 0, 0
	case *Service:
		d.CreateIndex, d.ModifyIndex = 0, 0
	case *Check:
		d.CreateIndex, d.ModifyIndex = 0, 0
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return b
}

// Encode returns the stored form of a node, service or check document.
func Encode[T Node | Service | Check](v *T) []byte { return docOf(v) }

func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Chunk cuts writes into transactions of at most maxWrites document writes
// each, never parting a service's document from its by-name entry, and
// returns with each chunk the sorted index keys it must put.
func Chunk(node string, writes []Write, maxWrites int) []Batch {
	if maxWrites < 2 {
		maxWrites = 2
	}
	var out []Batch
	var cur Batch
	for i, w := range writes {
		cur.Writes = append(cur.Writes, w)
		pairNext := i+1 < len(writes) && isByName(writes[i+1].Key)
		if len(cur.Writes) >= maxWrites && !pairNext {
			out = append(out, cur.withIndexes(node))
			cur = Batch{}
		}
	}
	if len(cur.Writes) > 0 {
		out = append(out, cur.withIndexes(node))
	}
	return out
}

func isByName(key string) bool {
	return len(key) > len(ByNamePrefix) && key[:len(ByNamePrefix)] == ByNamePrefix
}

// Batch is the writes of one transaction and the index keys it puts.
type Batch struct {
	Writes  []Write
	Indexes []string
}

func (b Batch) withIndexes(node string) Batch {
	set := map[string]bool{NodeIndexKey(node): true}
	for _, w := range b.Writes {
		for _, k := range w.Indexes {
			set[k] = true
		}
	}
	for k := range set {
		b.Indexes = append(b.Indexes, k)
	}
	sort.Strings(b.Indexes)
	return b
}
