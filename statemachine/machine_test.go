package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
)

// recorder is a Watchers that records every notification and the store's
// revision at that moment.
type recorder struct {
	m       *Machine
	revs    []int64
	events  []string
	visible []int64 // the KV's revision when each notification came
	resyncs int
	close   func() // closes the Machine and its database
}

func (r *recorder) Notify(rev int64, evs []*mvccpb.Event) {
	r.revs = append(r.revs, rev)
	for _, e := range evs {
		r.events = append(r.events, fmt.Sprintf("%s %s@%d", e.Type, e.Kv.Key, e.Kv.ModRevision))
	}
	r.visible = append(r.visible, r.m.KV().Rev())
}

func (r *recorder) Resync() { r.resyncs++ }

func openMachine(t *testing.T, fs vfs.FS) (*Machine, *recorder) {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	m, err := Open(Config{DB: db, Clock: func() time.Time { return now }, FS: fs, IngestDir: "db.ingest"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{m: m}
	m.SetWatchers(rec)
	var once sync.Once
	rec.close = func() { once.Do(func() { m.Close(); db.Close() }) }
	t.Cleanup(rec.close)
	return m, rec
}

// quietLogger keeps Pebble's recovery lines out of the test output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(string, ...any)             {}
func (quietLogger) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func put(k string, lease int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: lease}}
}

func noSpace(action pb.AlarmRequest_AlarmAction) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: action, MemberID: 1, Alarm: pb.AlarmType_NOSPACE}}
}

// run applies reqs as one run from index first and returns the results.
func run(t *testing.T, m *Machine, first uint64, reqs ...*pb.InternalRaftRequest) []raftnode.Result {
	t.Helper()
	rs := make([]raftnode.Request, len(reqs))
	for i, r := range reqs {
		rs[i] = raftnode.Request{Index: first + uint64(i), Term: 2, Req: r}
	}
	res := make([]raftnode.Result, len(reqs))
	if err := m.Apply(rs, res); err != nil {
		t.Fatal(err)
	}
	return res
}

// One run holding every kind of entry: an empty entry, puts, a lease grant
// and its revocation (which deletes the key put with it earlier in the same
// run), the NOSPACE alarm refusing a put and a grant until it is cleared.
// The results are etcd's, the watchers hear of every revision in order and
// only once the whole run is committed, and a reopened Machine holds the
// same state and skips the run if raft hands it again.
func TestApplyRunGatesResultsEvents(t *testing.T) {
	fs := vfs.NewMem()
	m, rec := openMachine(t, fs)
	res := run(t, m, 1,
		nil,
		put("a", 0),
		&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 60}},
		put("b", 7),
		noSpace(pb.AlarmRequest_ACTIVATE),
		put("c", 0),
		&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 8, TTL: 60}},
		&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a")}},
		&pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 7}},
		noSpace(pb.AlarmRequest_DEACTIVATE),
		put("d", 0),
		put("e", 99),
	)
	wantErr := []error{nil, nil, nil, nil, nil, alarm.ErrNoSpace, alarm.ErrNoSpace, nil, nil, nil, nil, mvcc.ErrLeaseNotFound}
	for i, r := range res {
		if !errors.Is(r.Err, wantErr[i]) || (r.Err == nil) != (wantErr[i] == nil) {
			t.Errorf("entry %d: error %v, want %v", i+1, r.Err, wantErr[i])
		}
	}
	if g, ok := res[2].Resp.(*pb.LeaseGrantResponse); !ok || g.ID != 7 || g.TTL != 60 || g.Header.Revision != 2 {
		t.Errorf("grant: %v", res[2].Resp)
	}
	if r, ok := res[8].Resp.(*pb.LeaseRevokeResponse); !ok || r.Header.Revision != 5 {
		t.Errorf("revoke: %v (want revision 5)", res[8].Resp)
	}
	if p, ok := res[10].Resp.(*pb.PutResponse); !ok || p.Header.Revision != 6 {
		t.Errorf("put d: %v", res[10].Resp)
	}
	want := []string{"PUT a@2", "PUT b@3", "DELETE a@4", "DELETE b@5", "PUT d@6"}
	if fmt.Sprint(rec.events) != fmt.Sprint(want) || fmt.Sprint(rec.revs) != "[2 3 4 5 6]" {
		t.Errorf("watchers heard %v at %v, want %v", rec.events, rec.revs, want)
	}
	for i, v := range rec.visible {
		if v != 6 {
			t.Errorf("notification %d came at revision %d, before the run was committed", i, v)
		}
	}
	if _, ok := m.Lessor().Lookup(7, false); ok || m.Alarms().Active(pb.AlarmType_NOSPACE) {
		t.Errorf("lease 7 still exists or NOSPACE still raised")
	}
	if idx, term := m.Applied(); idx != 12 || term != 2 {
		t.Errorf("applied %d/%d", idx, term)
	}
	rec.close()
	m2, rec2 := openMachine(t, fs)
	if m2.KV().Rev() != 6 || m2.Alarms().Active(pb.AlarmType_NOSPACE) {
		t.Fatalf("after reopen: revision %d", m2.KV().Rev())
	}
	run(t, m2, 11, put("d", 0), put("e", 99))
	if m2.KV().Rev() != 6 || len(rec2.revs) != 0 {
		t.Fatalf("a replayed run was applied again: revision %d, notified %v", m2.KV().Rev(), rec2.revs)
	}
}

// The CORRUPT alarm refuses every write but lets a lease revocation and
// reads through, and deactivating it lifts the gate.
func TestApplyCorruptGate(t *testing.T) {
	m, _ := openMachine(t, vfs.NewMem())
	corrupt := &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: 1, Alarm: pb.AlarmType_CORRUPT}}
	res := run(t, m, 1, corrupt, put("a", 0), &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a")}})
	if !errors.Is(res[1].Err, alarm.ErrCorrupt) || !errors.Is(res[2].Err, alarm.ErrCorrupt) {
		t.Fatalf("writes under CORRUPT: %v, %v", res[1].Err, res[2].Err)
	}
	if m.KV().Rev() != 1 {
		t.Fatalf("a refused write changed the revision to %d", m.KV().Rev())
	}
}

// A restored snapshot replaces every store, not only the keyspace: the
// lessor (with its keys), the alarms, and the hooks and watchers hear of it.
func TestRestoreReloadsEveryStore(t *testing.T) {
	a, _ := openMachine(t, vfs.NewMem())
	run(t, a, 1, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 60}}, put("k", 7),
		noSpace(pb.AlarmRequest_ACTIVATE))
	snap := a.NewSnapshot()
	var stream bytes.Buffer
	if _, err := snap.WriteTo(&stream); err != nil {
		t.Fatal(err)
	}
	snap.Close()
	b, rec := openMachine(t, vfs.NewMem())
	restored := false
	b.cfg.OnRestore = func() { restored = true }
	if err := b.ReceiveSnapshot(snap.Index(), snap.Term(), &stream); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(snap.Index(), snap.Term()); err != nil {
		t.Fatal(err)
	}
	st, ok := b.Lessor().Lookup(7, true)
	if !ok || len(st.Keys) != 1 || string(st.Keys[0]) != "k" {
		t.Errorf("lease 7 after restore: %v %v", ok, st.Keys)
	}
	if !b.Alarms().Active(pb.AlarmType_NOSPACE) || b.KV().Rev() != 2 {
		t.Errorf("after restore: NOSPACE %v, revision %d", b.Alarms().Active(pb.AlarmType_NOSPACE), b.KV().Rev())
	}
	if idx, _ := b.Applied(); idx != 3 || !restored || rec.resyncs != 1 {
		t.Errorf("applied %d, OnRestore called %v, watchers resynced %d times", idx, restored, rec.resyncs)
	}
}

// The auth gate on apply: with auth on, a write is checked against the
// user and auth revision its proposer stamped, so a revision that moved
// since (ErrAuthOldRevision) and a user without permission
// (ErrPermissionDenied) are refused, in the same run that changed them.
func TestApplyAuthGate(t *testing.T) {
	m, _ := openMachine(t, vfs.NewMem())
	noPass := &authpb.UserAddOptions{NoPassword: true}
	as := func(user string, rev uint64, r *pb.InternalRaftRequest) *pb.InternalRaftRequest {
		r.Header = &pb.RequestHeader{Username: user, AuthRevision: rev}
		return r
	}
	res := run(t, m, 1,
		&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", Options: noPass}},
		&pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "root"}},
		&pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}},
		&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "bob", Options: noPass}},
		&pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}},
	)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("auth setup entry %d: %v", i+1, r.Err)
		}
	}
	rev := m.Auth().Revision()
	res = run(t, m, 6,
		as("root", rev, put("a", 0)),
		as("root", rev-1, put("b", 0)),
		as("bob", rev, put("c", 0)),
		as("root", rev, &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "carol", Options: noPass}}),
		as("root", rev, put("d", 0)),
	)
	want := []error{nil, auth.ErrAuthOldRevision, auth.ErrPermissionDenied, nil, auth.ErrAuthOldRevision}
	for i, r := range res {
		if !errors.Is(r.Err, want[i]) || (r.Err == nil) != (want[i] == nil) {
			t.Errorf("entry %d: %v, want %v", i+6, r.Err, want[i])
		}
	}
	if m.KV().Rev() != 2 {
		t.Errorf("revision %d, want 2: only a's put may pass", m.KV().Rev())
	}
}
