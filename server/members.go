package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/record"
)

// membersPrefix is the replicated keyspace of cluster members (see
// docs/architecture.md): 0x20 + member ID (8, big-endian) → sealed
// etcdserverpb.Member. It is part of the state machine, so snapshots carry it.
const membersPrefix = 0x20

// removedPrefix is the replicated set of removed member IDs: 0x28 + ID (8,
// big-endian) → empty sealed record. A removed ID is never a member again.
const removedPrefix = 0x28

// rejectedPrefix records the raft index (8, big-endian) of every
// configuration change that validation rejected, so that replaying the log
// after a restart hands raft the same (empty) change again.
const rejectedPrefix = 0x29

func memberKey(id uint64) []byte { return idKey(membersPrefix, id) }

func idKey(prefix byte, id uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

// members is the cluster membership as applied from the raft log. The raft
// loop writes it (through the applier, inside apply batches); API goroutines
// read it. Safe for concurrent use.
type members struct {
	mu      sync.RWMutex
	byID    map[uint64]*etcdserverpb.Member
	removed map[uint64]bool
}

// iterReader is what the membership is read from: *pebble.DB, or a
// snapshot of it (mvcc.Snapshot).
type iterReader interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// load reads the membership from db.
func loadMembers(db iterReader) (*members, error) {
	ms := &members{byID: map[uint64]*etcdserverpb.Member{}, removed: map[uint64]bool{}}
	return ms, ms.reload(db)
}

func (ms *members) reload(db iterReader) error {
	if err := ms.reloadMembers(db); err != nil {
		return err
	}
	return ms.reloadRemoved(db)
}

func (ms *members) reloadRemoved(db iterReader) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{removedPrefix}, UpperBound: []byte{removedPrefix + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	removed := map[uint64]bool{}
	for it.First(); it.Valid(); it.Next() {
		if _, err := record.Open(it.Key(), it.Value()); err != nil || len(it.Key()) != 9 {
			return fmt.Errorf("server: read removed members: %w", record.ErrCorrupt)
		}
		removed[binary.BigEndian.Uint64(it.Key()[1:])] = true
	}
	ms.mu.Lock()
	ms.removed = removed
	ms.mu.Unlock()
	return it.Error()
}

func (ms *members) reloadMembers(db iterReader) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{membersPrefix}, UpperBound: []byte{membersPrefix + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	byID := map[uint64]*etcdserverpb.Member{}
	for it.First(); it.Valid(); it.Next() {
		payload, err := record.Open(it.Key(), it.Value())
		if err != nil {
			return fmt.Errorf("server: read members: %w", err)
		}
		m := &etcdserverpb.Member{}
		if err := proto.Unmarshal(payload, m); err != nil {
			return fmt.Errorf("server: decode member %x: %w", it.Key(), err)
		}
		byID[m.ID] = m
	}
	ms.mu.Lock()
	ms.byID = byID
	ms.mu.Unlock()
	return it.Error()
}

// list returns copies of all members ordered by ID.
func (ms *members) list() []*etcdserverpb.Member {
	ms.mu.RLock()
	out := make([]*etcdserverpb.Member, 0, len(ms.byID))
	for _, m := range ms.byID {
		out = append(out, proto.Clone(m).(*etcdserverpb.Member))
	}
	ms.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (ms *members) get(id uint64) (*etcdserverpb.Member, bool) {
	ms.mu.RLock()
	defer ms.mu.RUnlock()
	m, ok := ms.byID[id]
	if !ok {
		return nil, false
	}
	return proto.Clone(m).(*etcdserverpb.Member), true
}

// put writes m into b and, once b commits, into memory. Callers run it
// inside an apply batch.
func (ms *members) put(b *pebble.Batch, m *etcdserverpb.Member) error {
	payload, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	k := memberKey(m.ID)
	if err := b.Set(k, record.Seal(nil, k, payload), nil); err != nil {
		return err
	}
	ms.mu.Lock()
	ms.byID[m.ID] = proto.Clone(m).(*etcdserverpb.Member)
	ms.mu.Unlock()
	return nil
}

// remove deletes member id and records its ID as removed for good.
func (ms *members) remove(b *pebble.Batch, id uint64) error {
	if err := b.Delete(memberKey(id), nil); err != nil {
		return err
	}
	k := idKey(removedPrefix, id)
	if err := b.Set(k, record.Seal(nil, k, nil), nil); err != nil {
		return err
	}
	ms.mu.Lock()
	delete(ms.byID, id)
	ms.removed[id] = true
	ms.mu.Unlock()
	return nil
}

// isRemoved reports whether id was removed from the cluster.
func (ms *members) isRemoved(id uint64) bool {
	ms.mu.RLock()
	defer ms.mu.RUnlock()
	return ms.removed[id]
}

// recordRejected notes that the conf change at index was rejected.
func recordRejected(b *pebble.Batch, index uint64) error {
	k := idKey(rejectedPrefix, index)
	return b.Set(k, record.Seal(nil, k, nil), nil)
}

// wasRejected reports whether the conf change at index was rejected.
func wasRejected(db *pebble.DB, index uint64) (bool, error) {
	_, closer, err := db.Get(idKey(rejectedPrefix, index))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// setAttributes applies a member's published name and client URLs.
func (ms *members) setAttributes(b *pebble.Batch, r *membershippb.ClusterMemberAttrSetRequest) error {
	m, ok := ms.get(r.GetMember_ID())
	if !ok {
		return nil // removed meanwhile; nothing to update
	}
	m.Name = r.GetMemberAttributes().GetName()
	m.ClientURLs = r.GetMemberAttributes().GetClientUrls()
	return ms.put(b, m)
}

// state is the membership as validation reads it.
func (ms *members) state(maxLearners int) membership.State {
	return membership.State{Members: ms.list(), IsRemoved: ms.isRemoved, MaxLearners: maxLearners}
}

// apply carries out a validated change inside an apply batch.
func (ms *members) apply(b *pebble.Batch, c membership.Change) error {
	switch {
	case c.Type == raftpb.ConfChangeType_ConfChangeRemoveNode:
		return ms.remove(b, c.ID)
	case c.Promote:
		m, _ := ms.get(c.ID)
		m.IsLearner = false
		return ms.put(b, m)
	case c.Type == raftpb.ConfChangeType_ConfChangeUpdateNode:
		m, _ := ms.get(c.ID)
		m.PeerURLs = c.Member.GetPeerURLs()
		return ms.put(b, m)
	default:
		return ms.put(b, c.Member)
	}
}
