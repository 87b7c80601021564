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

// Stored is a node's state as it was read, kept so a mutation can work on
// the decoded documents in place: each document's stored bytes by key, and
// what the diff needs to know of the documents before the mutation (each
// instance's name, each check's index keys).
type Stored struct {
	Node     string
	Docs     map[string][]byte
	services map[string]string   // service ID -> service name
	checks   map[string][]string // check ID -> the index keys a change of it makes stale
}

// Remember records st as stored; docs are its documents' stored bytes by
// key, or nil to encode them from st.
func Remember(st *NodeState, docs map[string][]byte) *Stored {
	r := &Stored{Node: st.Name, Docs: docs, services: map[string]string{}, checks: map[string][]string{}}
	if docs == nil {
		r.Docs = map[string][]byte{}
		if st.Node != nil {
			r.Docs[NodeKey(st.Name)] = docOf(st.Node)
		}
		for id, v := range st.Services {
			r.Docs[ServiceKey(st.Name, id)] = docOf(v)
		}
		for id, v := range st.Checks {
			r.Docs[CheckKey(st.Name, id)] = docOf(v)
		}
	}
	for id, v := range st.Services {
		r.services[id] = v.Service
	}
	for id, v := range st.Checks {
		r.checks[id] = checkIndexes(st.Name, v)
	}
	return r
}

// Diff returns the writes that turn the state old into new (see DiffFrom).
func Diff(old, new *NodeState) []Write { return DiffFrom(Remember(old, nil), new) }

// DiffFrom returns the writes that turn the stored state into new, in a
// stable order: only documents whose stored form changed, so a check
// update that changes neither status nor output writes nothing.
func DiffFrom(old *Stored, new *NodeState) []Write {
	node := old.Node
	out := diffDoc(NodeKey(node), old.Docs[NodeKey(node)], docOf(new.Node), IndexNodes, NodeCheckIndexKey(node))
	for _, id := range unionKeys(old.services, new.Services) {
		out = append(out, diffService(old, id, new.Services[id])...)
	}
	for _, id := range unionKeys(old.checks, new.Checks) {
		n := new.Checks[id]
		idx := append(append([]string(nil), old.checks[id]...), checkIndexes(node, n)...)
		out = append(out, diffDoc(CheckKey(node, id), old.Docs[CheckKey(node, id)], docOf(n), idx...)...)
	}
	return out
}

func diffService(old *Stored, id string, n *Service) []Write {
	node := old.Node
	oldName, existed := old.services[id]
	var idx []string
	if existed {
		idx = append(idx, IndexServices, NameIndexKey(oldName))
	}
	if n != nil {
		idx = append(idx, IndexServices, NameIndexKey(n.Service))
	}
	nv := docOf(n)
	out := diffDoc(ServiceKey(node, id), old.Docs[ServiceKey(node, id)], nv, idx...)
	if len(out) == 0 {
		return nil
	}
	if existed && (n == nil || oldName != n.Service) {
		out = append(out, Write{Key: ByNameKey(oldName, node, id), Delete: true, Indexes: idx})
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
	c := *v // a shallow copy is enough to clear the indexes for encoding
	switch d := any(&c).(type) {
	case *Node:
		d.CreateIndex, d.ModifyIndex = 0, 0
	case *Service:
		d.CreateIndex, d.ModifyIndex = 0, 0
	case *Check:
		d.CreateIndex, d.ModifyIndex = 0, 0
	}
	b, err := json.Marshal(&c)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return b
}

// Encode returns the stored form of a node, service or check document.
func Encode[T Node | Service | Check](v *T) []byte { return docOf(v) }

func unionKeys[A, B any](a map[string]A, b map[string]B) []string {
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for k := range a {
		add(k)
	}
	for k := range b {
		add(k)
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
