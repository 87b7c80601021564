package membership

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// Prefix is the replicated keyspace of cluster members (see
// docs/architecture.md): 0x20 + member ID (8, big-endian) → sealed
// etcdserverpb.Member. It is part of the state machine, so snapshots carry it.
const Prefix = 0x20

// RemovedPrefix is the replicated set of removed member IDs: 0x28 + ID (8,
// big-endian) → empty sealed record. A removed ID is never a member again.
const RemovedPrefix = 0x28

// RejectedPrefix records the raft index (8, big-endian) of every
// configuration change that validation rejected, so that replaying the log
// after a restart hands raft the same (empty) change again.
const RejectedPrefix = 0x29

func idKey(prefix byte, id uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

// Store is the cluster membership as applied from the raft log: the
// members and the removed IDs. The state machine writes it (inside apply
// batches); API goroutines read it. Safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	byID    map[uint64]*etcdserverpb.Member
	removed map[uint64]bool
}

// Reader is what the membership is read from: *pebble.DB, or a snapshot
// of it (mvcc.Snapshot).
type Reader interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// NewStore returns an empty membership (a data directory being restored).
func NewStore() *Store {
	return &Store{byID: map[uint64]*etcdserverpb.Member{}, removed: map[uint64]bool{}}
}

// Load reads the membership from r.
func Load(r Reader) (*Store, error) {
	s := NewStore()
	return s, s.Reload(r)
}

// Reload replaces the membership with the one stored in r (after a
// snapshot was restored).
func (s *Store) Reload(r Reader) error {
	if err := s.reloadMembers(r); err != nil {
		return err
	}
	return s.reloadRemoved(r)
}

func (s *Store) reloadRemoved(r Reader) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{RemovedPrefix}, UpperBound: []byte{RemovedPrefix + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	removed := map[uint64]bool{}
	for it.First(); it.Valid(); it.Next() {
		if _, err := record.Open(it.Key(), it.Value()); err != nil || len(it.Key()) != 9 {
			return fmt.Errorf("membership: read removed members: %w", record.ErrCorrupt)
		}
		removed[binary.BigEndian.Uint64(it.Key()[1:])] = true
	}
	s.mu.Lock()
	s.removed = removed
	s.mu.Unlock()
	return it.Error()
}

func (s *Store) reloadMembers(r Reader) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{Prefix}, UpperBound: []byte{Prefix + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	byID := map[uint64]*etcdserverpb.Member{}
	for it.First(); it.Valid(); it.Next() {
		payload, err := record.Open(it.Key(), it.Value())
		if err != nil {
			return fmt.Errorf("membership: read members: %w", err)
		}
		m := &etcdserverpb.Member{}
		if err := proto.Unmarshal(payload, m); err != nil {
			return fmt.Errorf("membership: decode member %x: %w", it.Key(), err)
		}
		byID[m.ID] = m
	}
	s.mu.Lock()
	s.byID = byID
	s.mu.Unlock()
	return it.Error()
}

// List returns copies of all members ordered by ID.
func (s *Store) List() []*etcdserverpb.Member {
	s.mu.RLock()
	out := make([]*etcdserverpb.Member, 0, len(s.byID))
	for _, m := range s.byID {
		out = append(out, proto.Clone(m).(*etcdserverpb.Member))
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get returns a copy of member id.
func (s *Store) Get(id uint64) (*etcdserverpb.Member, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return proto.Clone(m).(*etcdserverpb.Member), true
}

// Put writes m into b and into memory. Callers run it inside an apply
// batch (or the batch of a restore).
func (s *Store) Put(b *pebble.Batch, m *etcdserverpb.Member) error {
	payload, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	k := idKey(Prefix, m.ID)
	if err := b.Set(k, record.Seal(nil, k, payload), nil); err != nil {
		return err
	}
	s.mu.Lock()
	s.byID[m.ID] = proto.Clone(m).(*etcdserverpb.Member)
	s.mu.Unlock()
	return nil
}

// remove deletes member id and records its ID as removed for good.
func (s *Store) remove(b *pebble.Batch, id uint64) error {
	if err := b.Delete(idKey(Prefix, id), nil); err != nil {
		return err
	}
	k := idKey(RemovedPrefix, id)
	if err := b.Set(k, record.Seal(nil, k, nil), nil); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.byID, id)
	s.removed[id] = true
	s.mu.Unlock()
	return nil
}

// IsRemoved reports whether id was removed from the cluster.
func (s *Store) IsRemoved(id uint64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.removed[id]
}

// Removed returns the removed member IDs in ascending order.
func (s *Store) Removed() []uint64 {
	s.mu.RLock()
	out := make([]uint64, 0, len(s.removed))
	for id := range s.removed {
		out = append(out, id)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// RecordRejected notes in b that the conf change at index was rejected.
func RecordRejected(b *pebble.Batch, index uint64) error {
	k := idKey(RejectedPrefix, index)
	return b.Set(k, record.Seal(nil, k, nil), nil)
}

// Getter is what WasRejected reads: *pebble.DB.
type Getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// WasRejected reports whether the conf change at index was rejected.
func WasRejected(db Getter, index uint64) (bool, error) {
	_, closer, err := db.Get(idKey(RejectedPrefix, index))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// SetAttributes applies a member's published name and client URLs.
func (s *Store) SetAttributes(b *pebble.Batch, r *membershippb.ClusterMemberAttrSetRequest) error {
	m, ok := s.Get(r.GetMember_ID())
	if !ok {
		return nil // removed meanwhile; nothing to update
	}
	m.Name = r.GetMemberAttributes().GetName()
	m.ClientURLs = r.GetMemberAttributes().GetClientUrls()
	return s.Put(b, m)
}

// State is the membership as validation reads it.
func (s *Store) State(maxLearners int) State {
	return State{Members: s.List(), IsRemoved: s.IsRemoved, MaxLearners: maxLearners}
}

// Apply carries out a validated change inside an apply batch.
func (s *Store) Apply(b *pebble.Batch, c Change) error {
	switch {
	case c.Type == raftpb.ConfChangeType_ConfChangeRemoveNode:
		return s.remove(b, c.ID)
	case c.Promote:
		m, _ := s.Get(c.ID)
		m.IsLearner = false
		return s.Put(b, m)
	case c.Type == raftpb.ConfChangeType_ConfChangeUpdateNode:
		m, _ := s.Get(c.ID)
		m.PeerURLs = c.Member.GetPeerURLs()
		return s.Put(b, m)
	default:
		return s.Put(b, c.Member)
	}
}

// AttrSetRequest is the raft request publishing member id's name and
// client URLs (etcd's ClusterMemberAttrSet): what a starting member
// proposes until the membership holds them.
func AttrSetRequest(id uint64, name string, clientURLs []string) *etcdserverpb.InternalRaftRequest {
	return &etcdserverpb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID:        id,
		MemberAttributes: &membershippb.Attributes{Name: name, ClientUrls: clientURLs},
	}}
}
