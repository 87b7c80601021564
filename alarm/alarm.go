package alarm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// Prefix is the first byte of every alarm key (docs/architecture.md).
const Prefix byte = 0x24

// ErrNoSpace is the answer to a write that would add data while the
// database is over its quota or the NOSPACE alarm is raised (etcd's
// errors.ErrNoSpace; clients see "etcdserver: mvcc: database space exceeded").
var ErrNoSpace = errors.New("etcdserver: no space")

// Key returns the key alarm a of member id is stored under.
func Key(t pb.AlarmType, id uint64) []byte {
	k := make([]byte, 0, 13)
	k = append(k, Prefix)
	k = binary.BigEndian.AppendUint32(k, uint32(t))
	return binary.BigEndian.AppendUint64(k, id)
}

// Set is the set of raised alarms as applied from the raft log. The raft loop
// changes it (Apply); any goroutine may read it. Safe for concurrent use.
type Set struct {
	mu     sync.RWMutex
	raised map[pb.AlarmType]map[uint64]*pb.AlarmMember
}

// Reader is what Load reads from: *pebble.DB or *pebble.Snapshot.
type Reader interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// Load reads the alarms stored in r.
func Load(r Reader) (*Set, error) {
	s := &Set{}
	return s, s.Reload(r)
}

// Reload replaces the set with the alarms stored in r (after a snapshot was
// installed). A stored alarm that fails its checksum is record.ErrCorrupt.
func (s *Set) Reload(r Reader) (err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{Prefix}, UpperBound: []byte{Prefix + 1}})
	if err != nil {
		return fmt.Errorf("alarm: iterator: %w", err)
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("alarm: read: %w", cerr)
		}
	}()
	raised := map[pb.AlarmType]map[uint64]*pb.AlarmMember{}
	for it.First(); it.Valid(); it.Next() {
		p, err := record.Open(it.Key(), it.Value())
		if err != nil {
			return fmt.Errorf("alarm: read %x: %w", it.Key(), err)
		}
		m := &pb.AlarmMember{}
		if err := proto.Unmarshal(p, m); err != nil {
			return fmt.Errorf("alarm: decode %x: %w: %v", it.Key(), record.ErrCorrupt, err)
		}
		add(raised, m)
	}
	s.mu.Lock()
	s.raised = raised
	s.mu.Unlock()
	return nil
}

func add(raised map[pb.AlarmType]map[uint64]*pb.AlarmMember, m *pb.AlarmMember) {
	if raised[m.Alarm] == nil {
		raised[m.Alarm] = map[uint64]*pb.AlarmMember{}
	}
	raised[m.Alarm][m.MemberID] = m
}

// Apply applies a committed AlarmRequest as etcd's applier does, adding its
// writes to b (the apply batch of its raft entry). GET lists the alarms of
// type r.Alarm (NONE: all); ACTIVATE raises r.Alarm for r.MemberID (NONE is
// ignored) and answers the raised alarm, the existing one if it was raised
// already; DEACTIVATE clears it and answers it, nothing if it was not raised.
// The in-memory set changes at once; the caller commits b or stops the
// member. Unknown actions answer an empty response.
func (s *Set) Apply(b *pebble.Batch, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp := &pb.AlarmResponse{}
	switch r.GetAction() {
	case pb.AlarmRequest_GET:
		resp.Alarms = s.List(r.GetAlarm())
	case pb.AlarmRequest_ACTIVATE:
		if r.GetAlarm() == pb.AlarmType_NONE {
			break
		}
		m, err := s.activate(b, r.GetMemberID(), r.GetAlarm())
		if err != nil {
			return nil, err
		}
		resp.Alarms = []*pb.AlarmMember{m}
	case pb.AlarmRequest_DEACTIVATE:
		m, err := s.deactivate(b, r.GetMemberID(), r.GetAlarm())
		if err != nil {
			return nil, err
		}
		if m != nil {
			resp.Alarms = []*pb.AlarmMember{m}
		}
	}
	return resp, nil
}

func (s *Set) activate(b *pebble.Batch, id uint64, t pb.AlarmType) (*pb.AlarmMember, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.raised[t][id]; m != nil {
		return proto.Clone(m).(*pb.AlarmMember), nil
	}
	m := &pb.AlarmMember{MemberID: id, Alarm: t}
	p, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("alarm: marshal: %w", err)
	}
	k := Key(t, id)
	if err := b.Set(k, record.Seal(nil, k, p), nil); err != nil {
		return nil, err
	}
	if s.raised == nil {
		s.raised = map[pb.AlarmType]map[uint64]*pb.AlarmMember{}
	}
	add(s.raised, m)
	return proto.Clone(m).(*pb.AlarmMember), nil
}

func (s *Set) deactivate(b *pebble.Batch, id uint64, t pb.AlarmType) (*pb.AlarmMember, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.raised[t][id]
	if m == nil {
		return nil, nil
	}
	if err := b.Delete(Key(t, id), nil); err != nil {
		return nil, err
	}
	delete(s.raised[t], id)
	return m, nil
}

// List returns copies of the raised alarms of type t (NONE: every type),
// ordered by type then member ID.
func (s *Set) List(t pb.AlarmType) []*pb.AlarmMember {
	s.mu.RLock()
	var out []*pb.AlarmMember
	for at, byID := range s.raised {
		if t != pb.AlarmType_NONE && at != t {
			continue
		}
		for _, m := range byID {
			out = append(out, proto.Clone(m).(*pb.AlarmMember))
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Alarm != out[j].Alarm {
			return out[i].Alarm < out[j].Alarm
		}
		return out[i].MemberID < out[j].MemberID
	})
	return out
}

// Active reports whether any member raised an alarm of type t.
func (s *Set) Active(t pb.AlarmType) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.raised[t]) > 0
}
