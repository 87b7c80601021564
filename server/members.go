package server

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// membersPrefix is the replicated keyspace of cluster members (see
// docs/architecture.md): 0x20 + member ID (8, big-endian) → sealed
// etcdserverpb.Member. It is part of the state machine, so snapshots carry it.
const membersPrefix = 0x20

func memberKey(id uint64) []byte {
	k := make([]byte, 9)
	k[0] = membersPrefix
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

// members is the cluster membership as applied from the raft log. The raft
// loop writes it (through the applier, inside apply batches); API goroutines
// read it. Safe for concurrent use.
type members struct {
	mu   sync.RWMutex
	byID map[uint64]*etcdserverpb.Member
}

// load reads the membership from db.
func loadMembers(db *pebble.DB) (*members, error) {
	ms := &members{byID: map[uint64]*etcdserverpb.Member{}}
	return ms, ms.reload(db)
}

func (ms *members) reload(db *pebble.DB) error {
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

func (ms *members) remove(b *pebble.Batch, id uint64) error {
	if err := b.Delete(memberKey(id), nil); err != nil {
		return err
	}
	ms.mu.Lock()
	delete(ms.byID, id)
	ms.mu.Unlock()
	return nil
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
