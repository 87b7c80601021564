package alarm

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

func openDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// apply applies r in its own committed batch, as one raft entry would.
func apply(t *testing.T, db *pebble.DB, s *Set, r *pb.AlarmRequest) *pb.AlarmResponse {
	t.Helper()
	b := db.NewIndexedBatch()
	defer b.Close()
	resp, err := s.Apply(b, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return resp
}

func req(action pb.AlarmRequest_AlarmAction, id uint64, at pb.AlarmType) *pb.AlarmRequest {
	return &pb.AlarmRequest{Action: action, MemberID: id, Alarm: at}
}

func am(id uint64, at pb.AlarmType) *pb.AlarmMember { return &pb.AlarmMember{MemberID: id, Alarm: at} }

func sameAlarms(got, want []*pb.AlarmMember) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			return false
		}
	}
	return true
}

func TestApplyAsEtcd(t *testing.T) {
	const (
		get        = pb.AlarmRequest_GET
		activate   = pb.AlarmRequest_ACTIVATE
		deactivate = pb.AlarmRequest_DEACTIVATE
		nospace    = pb.AlarmType_NOSPACE
		corrupt    = pb.AlarmType_CORRUPT
		none       = pb.AlarmType_NONE
	)
	db := openDB(t)
	s, err := Load(db)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		req  *pb.AlarmRequest
		want []*pb.AlarmMember
	}{
		{"get on an empty set", req(get, 0, none), nil},
		{"activate NONE is ignored", req(activate, 1, none), nil},
		{"activate", req(activate, 2, nospace), []*pb.AlarmMember{am(2, nospace)}},
		{"activate again answers the raised alarm", req(activate, 2, nospace), []*pb.AlarmMember{am(2, nospace)}},
		{"another member", req(activate, 1, nospace), []*pb.AlarmMember{am(1, nospace)}},
		{"another type", req(activate, 3, corrupt), []*pb.AlarmMember{am(3, corrupt)}},
		{"get all, by type then member", req(get, 0, none), []*pb.AlarmMember{am(1, nospace), am(2, nospace), am(3, corrupt)}},
		{"get one type", req(get, 0, corrupt), []*pb.AlarmMember{am(3, corrupt)}},
		{"deactivate", req(deactivate, 2, nospace), []*pb.AlarmMember{am(2, nospace)}},
		{"deactivate what is not raised", req(deactivate, 2, nospace), nil},
		{"deactivate another type's member", req(deactivate, 3, nospace), nil},
		{"get after deactivate", req(get, 0, nospace), []*pb.AlarmMember{am(1, nospace)}},
	}
	for _, st := range steps {
		got := apply(t, db, s, st.req)
		if !sameAlarms(got.Alarms, st.want) {
			t.Errorf("%s: got %v, want %v", st.name, got.Alarms, st.want)
		}
	}
	if !s.Active(nospace) || !s.Active(corrupt) || s.Active(pb.AlarmType_NONE) {
		t.Errorf("active: nospace %v corrupt %v", s.Active(nospace), s.Active(corrupt))
	}
	// The set is persisted: a reload (restart) sees the same alarms.
	again, err := Load(db)
	if err != nil {
		t.Fatal(err)
	}
	if want := []*pb.AlarmMember{am(1, nospace), am(3, corrupt)}; !sameAlarms(again.List(none), want) {
		t.Errorf("after reload: %v, want %v", again.List(none), want)
	}
}

func TestUncommittedBatchPersistsNothing(t *testing.T) {
	db := openDB(t)
	s, _ := Load(db)
	b := db.NewIndexedBatch()
	if _, err := s.Apply(b, req(pb.AlarmRequest_ACTIVATE, 7, pb.AlarmType_NOSPACE)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	again, _ := Load(db)
	if len(again.List(pb.AlarmType_NONE)) != 0 {
		t.Errorf("an alarm whose batch was never committed was persisted")
	}
}

func TestLoadRejectsCorruptAlarm(t *testing.T) {
	db := openDB(t)
	k := Key(pb.AlarmType_NOSPACE, 1)
	v := record.Seal(nil, k, []byte{0x08, 0x01})
	v[len(v)-1] ^= 0xff
	if err := db.Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(db); !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("load of a corrupt alarm: %v, want record.ErrCorrupt", err)
	}
}

func TestCost(t *testing.T) {
	put := func(k, v string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
	}
	get := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}
	nested := func(ops ...*pb.RequestOp) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: ops}}}
	}
	cases := []struct {
		name string
		got  int
		want int
	}{
		{"put", CostPut(&pb.PutRequest{Key: []byte("ab"), Value: []byte("cde")}), 256 + 5},
		{"read-only txn", CostTxn(&pb.TxnRequest{Success: []*pb.RequestOp{get}}), 0},
		{"txn: the larger branch", CostTxn(&pb.TxnRequest{Success: []*pb.RequestOp{put("a", "")}, Failure: []*pb.RequestOp{put("a", "bb"), put("c", "")}}), 259 + 257},
		{"nested txn", CostTxn(&pb.TxnRequest{Success: []*pb.RequestOp{get, nested(put("a", "b"))}}), 258},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: cost %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestAvailable(t *testing.T) {
	cases := []struct {
		size, quota int64
		cost        int
		want        bool
	}{
		{size: 100, quota: 1000, cost: 0, want: true},
		{size: 5000, quota: 1000, cost: 0, want: true}, // adds nothing: always fits
		{size: 700, quota: 1000, cost: 299, want: true},
		{size: 700, quota: 1000, cost: 300, want: false}, // etcd: size+cost must stay below the quota
		{size: 5000, quota: -1, cost: 300, want: true},   // a negative quota disables the check
	}
	for _, c := range cases {
		if got := Available(c.size, c.quota, c.cost); got != c.want {
			t.Errorf("Available(%d, %d, %d) = %v, want %v", c.size, c.quota, c.cost, got, c.want)
		}
	}
}

func TestCappedGate(t *testing.T) {
	put := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k")}}
	txnPut := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Failure: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k")}}},
	}}}
	txnRead := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}},
	}}}
	grant := &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{TTL: 10}}
	del := &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}}
	compact := &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 3}}
	disarm := &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE}}
	for name, r := range map[string]*pb.InternalRaftRequest{"put": put, "txn with a put": txnPut, "lease grant": grant} {
		if err := Capped(true, r); !errors.Is(err, ErrNoSpace) {
			t.Errorf("%s under NOSPACE: %v", name, err)
		}
		if err := Capped(false, r); err != nil {
			t.Errorf("%s without NOSPACE: %v", name, err)
		}
	}
	for name, r := range map[string]*pb.InternalRaftRequest{"read txn": txnRead, "delete": del, "compaction": compact, "disarm": disarm} {
		if err := Capped(true, r); err != nil {
			t.Errorf("%s under NOSPACE: %v", name, err)
		}
	}
}

func TestCorruptGate(t *testing.T) {
	op := func(r *pb.RequestOp) *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{r}}}
	}
	checkpoint := func(ttl int64) *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{
			Checkpoints: []*pb.LeaseCheckpoint{{ID: 1, Remaining_TTL: 30}, {ID: 2, Remaining_TTL: ttl}}}}
	}
	refused := map[string]*pb.InternalRaftRequest{
		"put":          {Put: &pb.PutRequest{Key: []byte("k")}},
		"delete":       {DeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}},
		"txn":          op(&pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}),
		"compaction":   {Compaction: &pb.CompactionRequest{Revision: 3}},
		"lease grant":  {LeaseGrant: &pb.LeaseGrantRequest{TTL: 10}},
		"lease revoke": {LeaseRevoke: &pb.LeaseRevokeRequest{ID: 1}},
		"lease expiry": checkpoint(-7),
	}
	passed := map[string]*pb.InternalRaftRequest{
		"renewals": checkpoint(30),
		"disarm":   {Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, Alarm: pb.AlarmType_CORRUPT}},
		"auth":     {AuthUserAdd: &pb.AuthUserAddRequest{Name: "u"}},
		"member":   {ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{Member_ID: 1}},
	}
	for name, r := range refused {
		if err := Corrupt(true, r); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s under CORRUPT: %v, want ErrCorrupt", name, err)
		}
		if err := Corrupt(false, r); err != nil {
			t.Errorf("%s without CORRUPT: %v", name, err)
		}
	}
	for name, r := range passed {
		if err := Corrupt(true, r); err != nil {
			t.Errorf("%s under CORRUPT: %v, want it to pass", name, err)
		}
	}
}
