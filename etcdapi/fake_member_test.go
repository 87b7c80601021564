package etcdapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
	"github.com/synod-db/synod/watch"
)

// The identity fakeMember puts in every header.
const (
	testClusterID = 0xc1
	testMemberID  = 0x1d
	testRaftTerm  = 7
)

// fakeMember is a member over a real mvcc.Store, lessor, watch hub and
// auth store (off) on an in-memory pebble DB: Propose applies at once as
// the raft loop would, ReadIndex returns at once, it is always the leader.
// Errors and panics can be injected.
type fakeMember struct {
	store  *mvcc.Store
	limits Limits
	hooks  *hookStore // when set, the services read through it
	lessor *lease.Lessor
	hub    *watch.Hub
	auth   *auth.Store

	proposals   atomic.Int64 // Propose calls
	readIndexes atomic.Int64 // ReadIndex calls
	biggest     atomic.Int64 // largest proposal marshalled, header included

	applyMu sync.Mutex // Apply is serial, like the raft loop
	index   uint64     // last raft index applied
	lastID  uint64

	db     *pebble.DB
	alarms *alarm.Set

	mu           sync.Mutex
	noSpace      bool // CheckQuota fails
	proposeErr   error
	readIndexErr error
	panicking    bool          // Propose and ReadIndex panic
	proposeResp  proto.Message // answered instead of applying
	linearizable []bool        // Members calls
	changeErr    error         // membership changes fail with it
	nextLeaseID  int64
}

func newFakeMember(t *testing.T, l Limits) *fakeMember {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := mvcc.Open(db, mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.Close()
		_ = db.Close()
	})
	alarms, err := alarm.Load(db)
	if err != nil {
		t.Fatal(err)
	}
	au, err := auth.Load(db)
	if err != nil {
		t.Fatal(err)
	}
	hub := watch.NewHub(st, watch.Config{})
	t.Cleanup(hub.Close)
	return &fakeMember{store: st, limits: l, db: db, alarms: alarms, lessor: lease.New(lease.Config{}), hub: hub, auth: au}
}

// backends are m's parts as the edge takes them; the store is read through
// m.hooks when set.
func (m *fakeMember) backends() Backends {
	var kv KV = m.store
	if m.hooks != nil {
		kv = m.hooks
	}
	return Backends{
		Raft: m, KV: kv, Member: m, Quota: m, Cluster: m, Maintenance: m,
		Leases: m.lessor, LeaseGrants: m, Watch: m.hub, Leader: m,
		Auth: m.auth, AuthOptions: AuthOptions{BcryptCost: auth.MinBcryptCost, TokenTTL: time.Minute},
	}
}

// set runs f under the member's lock, to change what it injects.
func (m *fakeMember) set(f func(m *fakeMember)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

// Propose implements Raft: it assigns an ID, marshals req like raft would
// and applies it; for a physical compaction it waits for the deletion.
func (m *fakeMember) Propose(ctx context.Context, req *pb.InternalRaftRequest) (proto.Message, error) {
	m.proposals.Add(1)
	m.mu.Lock()
	err, panicking, resp := m.proposeErr, m.panicking, m.proposeResp
	m.mu.Unlock()
	if panicking {
		panic("fakeMember: Propose told to panic")
	}
	if err != nil {
		return nil, err
	}
	if resp != nil {
		return resp, nil
	}
	res, err := m.apply(req)
	if err != nil || res.Err != nil {
		return nil, errors.Join(err, res.Err)
	}
	if req.GetCompaction().GetPhysical() {
		select {
		case <-res.Compacted:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return res.Resp, nil
}

// apply applies req at the next raft index, as the raft loop would.
func (m *fakeMember) apply(req *pb.InternalRaftRequest) (mvcc.Result, error) {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.lastID++
	req.Header = &pb.RequestHeader{ID: m.lastID | 0xffff<<48} // etcd-like: member bits on top
	data, err := proto.Marshal(req)
	if err != nil {
		return mvcc.Result{}, err
	}
	m.biggest.Store(max(m.biggest.Load(), int64(len(data))))
	m.index++
	return m.store.Apply(m.index, testRaftTerm, req)
}

// ReadIndex implements Raft.
func (m *fakeMember) ReadIndex(ctx context.Context) error {
	m.readIndexes.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.panicking {
		panic("fakeMember: ReadIndex told to panic")
	}
	if m.readIndexErr != nil {
		return m.readIndexErr
	}
	return ctx.Err()
}

// Header implements Member.
func (m *fakeMember) Header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: testClusterID, MemberId: testMemberID, RaftTerm: testRaftTerm}
}

// Members implements Cluster.
func (m *fakeMember) Members(_ context.Context, linearizable bool) ([]*pb.Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.linearizable = append(m.linearizable, linearizable)
	return []*pb.Member{
		{ID: testMemberID, Name: "one", PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379"}},
		{ID: 0x2e, Name: "two", PeerURLs: []string{"http://127.0.0.2:2380"}, IsLearner: true},
	}, nil
}

// Status implements Maintenance.
func (m *fakeMember) Status(context.Context) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{
		Version: "3.7.3", DbSize: 4096, DbSizeInUse: 2048, Leader: testMemberID,
		RaftIndex: 42, RaftTerm: testRaftTerm, RaftAppliedIndex: 41, DbSizeQuota: 2 << 30,
		StorageVersion: "3.7.0",
	}, nil
}

// Limits implements Member.
func (m *fakeMember) Limits() Limits { return m.limits }

// hookStore wraps the member's store to interfere with Range.
type hookStore struct {
	KV
	mu      sync.Mutex
	calls   int
	onRange func(calls int) // called before each Range with the calls so far
}

// hook makes the services of m read through a hookStore, returned.
func (m *fakeMember) hook() *hookStore {
	m.hooks = &hookStore{KV: m.store}
	return m.hooks
}

// set runs f under the hook's lock.
func (h *hookStore) set(f func(h *hookStore)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

// Range implements KV.
func (h *hookStore) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	h.mu.Lock()
	h.calls++
	calls, onRange := h.calls, h.onRange
	h.mu.Unlock()
	if onRange != nil {
		onRange(calls)
	}
	return h.KV.Range(ctx, r)
}

// testServer is a member served on a loopback listener.
type testServer struct {
	m    *fakeMember
	addr string
}

// serve serves m on 127.0.0.1 until the test ends.
func serve(t *testing.T, m *fakeMember, opts Options) *testServer {
	t.Helper()
	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	if opts.Logger == nil {
		opts.Logger = newTestLogger(logs)
	}
	gs := NewGRPCServer(m.backends(), opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return &testServer{m: m, addr: lis.Addr().String()}
}

// client returns a clientv3 client of s, closed when the test ends.
func (s *testServer) client(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:       []string{s.addr},
		DialTimeout:     5 * time.Second,
		MaxUnaryRetries: 1,
		Logger:          zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// newTestLogger logs everything, as text, to w.
func newTestLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logBuffer collects a server's log; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testCtx is a context bounded well below the test timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// AlarmGate implements Quota: puts fail while noSpace is set.
func (m *fakeMember) AlarmGate(req *pb.InternalRaftRequest) error {
	return alarm.Capped(m.noSpace, req)
}

// CheckQuota implements Quota: it fails while noSpace is set.
func (m *fakeMember) CheckQuota(_ context.Context, cost int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.noSpace && cost > 0 {
		return alarm.ErrNoSpace
	}
	return nil
}

// Alarm implements Maintenance: it applies r to the member's alarm set at once.
func (m *fakeMember) Alarm(_ context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	b := m.db.NewIndexedBatch()
	defer b.Close()
	resp, err := m.alarms.Apply(b, r)
	if err != nil {
		return nil, err
	}
	return resp, b.Commit(pebble.NoSync)
}

// Snapshot implements Maintenance with the store's snapshot stream in memory.
func (m *fakeMember) Snapshot(context.Context) (io.ReadCloser, int64, error) {
	sn := m.store.NewSnapshot()
	defer sn.Close()
	var buf bytes.Buffer
	n, err := sn.WriteTo(&buf)
	return io.NopCloser(&buf), n, err
}

// MoveLeader implements Maintenance: the fake is the leader of a cluster whose
// only other voter is 0x2f.
func (m *fakeMember) MoveLeader(_ context.Context, target uint64) error {
	if target != 0x2f && target != testMemberID {
		return raftnode.ErrBadTransferee
	}
	return nil
}

// Defragment implements Maintenance.
func (m *fakeMember) Defragment(context.Context) error { return nil }

// Leader implements Leader: the fake is always the leader.
func (m *fakeMember) Leader() uint64 { return testMemberID }

// LeaderChanged implements Leader: the leader never changes.
func (m *fakeMember) LeaderChanged() <-chan struct{} { return nil }

// NewLeaseID implements LeaseGrants with IDs counted up from nextLeaseID.
func (m *fakeMember) NewLeaseID() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextLeaseID++
	return m.nextLeaseID
}

// MinLeaseTTL implements LeaseGrants.
func (m *fakeMember) MinLeaseTTL() int64 { return 1 }

// changedMembers are the members after any change to a fakeMember's.
var changedMembers = []*pb.Member{{ID: 1, Name: "a", PeerURLs: []string{"http://a:1"}}, {ID: 2, PeerURLs: []string{"http://b:1"}, IsLearner: true}}

// AddMember implements Cluster: it answers changedMembers, or changeErr.
func (m *fakeMember) AddMember(_ context.Context, urls []string, learner bool) (*pb.Member, []*pb.Member, error) {
	return &pb.Member{ID: 2, PeerURLs: urls, IsLearner: learner}, changedMembers, m.changeError()
}

// RemoveMember implements Cluster like AddMember.
func (m *fakeMember) RemoveMember(context.Context, uint64) ([]*pb.Member, error) {
	return changedMembers, m.changeError()
}

// UpdateMember implements Cluster like AddMember.
func (m *fakeMember) UpdateMember(context.Context, uint64, []string) ([]*pb.Member, error) {
	return changedMembers, m.changeError()
}

// PromoteMember implements Cluster like AddMember.
func (m *fakeMember) PromoteMember(context.Context, uint64) ([]*pb.Member, error) {
	return changedMembers, m.changeError()
}

// changeError is the injected error of membership changes.
func (m *fakeMember) changeError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changeErr
}
