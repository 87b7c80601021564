package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var update = flag.Bool("update", false, "rewrite testdata/lines.golden")

var t0 = time.Date(2026, 12, 2, 0, 1, 2, 345678901, time.FixedZone("CET", 3600))

// TestLineFormatGolden pins the line format: field names, order, escaping
// of keys that are not UTF-8, omitted empty fields, the dropped line.
func TestLineFormatGolden(t *testing.T) {
	entries := []Entry{
		{Time: t0, User: "alice", Peer: "127.0.0.1:5000", RPC: "/etcdserverpb.KV/Put", Key: []byte("foo"),
			Lease: 7587, Code: "OK", Revision: 2},
		{Time: t0, Peer: "127.0.0.1:5000", RPC: "/etcdserverpb.KV/DeleteRange", Key: []byte("a<b>&\n\"q\""),
			RangeEnd: []byte{0}, Code: "OK", Revision: 3},
		{Time: t0, Peer: "[::1]:5001", RPC: "/etcdserverpb.KV/Put", Key: []byte{0xff, 0xfe, 'k'},
			Code: "NotFound", Message: "etcdserver: requested lease not found"},
		{Time: t0, User: "bob", Peer: "127.0.0.1:5000", RPC: "/etcdserverpb.KV/Txn", Code: "OK", Revision: 4,
			Ops:          []Op{{Type: "put", Key: []byte("x")}, {Type: "delete_range", Key: []byte("a"), RangeEnd: []byte{0xc3}}},
			OpsTruncated: 3},
		{Time: t0, Peer: "127.0.0.1:5000", RPC: "/etcdserverpb.Cluster/MemberRemove", Member: 0x8e9e05c52164694d,
			Code: "OK"},
		{Time: t0, Peer: "127.0.0.1:5000", RPC: "/etcdserverpb.Auth/UserGrantRole", Name: "alice", Role: "root",
			Code: "PermissionDenied", Message: "etcdserver: permission denied"},
		{Time: t0, Peer: "127.0.0.1:5000", RPC: "/etcdserverpb.KV/Compact", Detail: "revision=3 physical",
			Code: "OK", Revision: 5},
		{Time: t0, Dropped: 12},
	}
	var got []byte
	for i := range entries {
		got = entries[i].AppendJSON(got)
	}
	path := filepath.Join("testdata", "lines.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("lines differ from %s (run with -update to accept):\n%s", path, got)
	}
	for i, l := range bytes.Split(bytes.TrimSuffix(got, []byte("\n")), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
	}
}

// TestPrintableKeys: a UTF-8 key round-trips through "key", any other key
// through "key_base64".
func TestPrintableKeys(t *testing.T) {
	for _, k := range [][]byte{[]byte("plain"), []byte("ctl\x00\x01\x7f"), []byte("日本"), {0xff}, {'a', 0xc3}} {
		e := Entry{Time: t0, Key: k}
		var m struct {
			Key    *string `json:"key"`
			KeyB64 []byte  `json:"key_base64"`
		}
		if err := json.Unmarshal(e.AppendJSON(nil), &m); err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Key != nil && m.KeyB64 == nil && *m.Key == string(k):
		case m.Key == nil && bytes.Equal(m.KeyB64, k):
		default:
			t.Errorf("key %q: line has key=%v key_base64=%q", k, m.Key, m.KeyB64)
		}
	}
}

func put(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("secret-value")}}}
}

func get(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
}

func txnOp(t *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: t}}
}

// TestAudited: which RPCs are written, by method, request and outcome.
func TestAudited(t *testing.T) {
	denied := rpctypes.ErrGRPCPermissionDenied
	for _, tc := range []struct {
		method string
		req    any
		err    error
		want   bool
	}{
		{"/etcdserverpb.KV/Put", &pb.PutRequest{Key: []byte("k")}, nil, true},
		{"/etcdserverpb.KV/Range", &pb.RangeRequest{Key: []byte("k")}, nil, false},
		{"/etcdserverpb.KV/Range", &pb.RangeRequest{Key: []byte("k")}, denied, true},
		{"/etcdserverpb.KV/Range", &pb.RangeRequest{Key: []byte("k")}, rpctypes.ErrGRPCInvalidAuthToken, true},
		{"/etcdserverpb.KV/Range", &pb.RangeRequest{Key: []byte("k")}, rpctypes.ErrGRPCAuthFailed, true},
		{"/etcdserverpb.KV/Range", nil, rpctypes.ErrGRPCCompacted, false},
		{"/etcdserverpb.KV/Range", nil, status.Error(codes.Unauthenticated, "x"), true},
		{"/etcdserverpb.KV/Txn", &pb.TxnRequest{Success: []*pb.RequestOp{get("a")}}, nil, false},
		{"/etcdserverpb.KV/Txn", &pb.TxnRequest{Failure: []*pb.RequestOp{put("a")}}, nil, true},
		{"/etcdserverpb.KV/Txn", &pb.TxnRequest{Success: []*pb.RequestOp{txnOp(&pb.TxnRequest{Failure: []*pb.RequestOp{put("a")}})}}, nil, true},
		{"/etcdserverpb.Maintenance/Alarm", &pb.AlarmRequest{Action: pb.AlarmRequest_GET}, nil, false},
		{"/etcdserverpb.Maintenance/Alarm", &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE}, nil, true},
		{"/etcdserverpb.Maintenance/Status", &pb.StatusRequest{}, nil, false},
		{"/etcdserverpb.Maintenance/Snapshot", nil, nil, true},
		{"/etcdserverpb.Auth/Authenticate", &pb.AuthenticateRequest{Name: "u"}, nil, true},
		{"/etcdserverpb.Auth/UserList", &pb.AuthUserListRequest{}, nil, true},
		{"/etcdserverpb.Lease/LeaseGrant", &pb.LeaseGrantRequest{TTL: 5}, rpctypes.ErrGRPCNoLeader, true},
		{"/etcdserverpb.Lease/LeaseTimeToLive", &pb.LeaseTimeToLiveRequest{ID: 5}, nil, false},
		{"/etcdserverpb.Watch/Watch", nil, nil, false},
	} {
		if got := Audited(tc.method, tc.req, tc.err); got != tc.want {
			t.Errorf("Audited(%s, %v, %v) = %v, want %v", tc.method, tc.req, tc.err, got, tc.want)
		}
	}
}

// TestDescribe: the fields each kind of request fills, and that values and
// passwords never appear.
func TestDescribe(t *testing.T) {
	hdr := &pb.ResponseHeader{Revision: 9}
	nested := &pb.TxnRequest{Success: []*pb.RequestOp{put("in-s")}, Failure: []*pb.RequestOp{put("in-f")}}
	txn := &pb.TxnRequest{
		Success: []*pb.RequestOp{put("s1"), get("g"), txnOp(nested)},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("f"), RangeEnd: []byte("g")}}}},
	}
	txnResp := &pb.TxnResponse{Header: hdr, Succeeded: true, Responses: []*pb.ResponseOp{{}, {},
		{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: &pb.TxnResponse{Succeeded: false}}}}}
	for _, tc := range []struct {
		name      string
		method    string
		req, resp any
		want      Entry
	}{
		{"put", "/etcdserverpb.KV/Put", &pb.PutRequest{Key: []byte("k"), Value: []byte("secret-value"), Lease: 5},
			&pb.PutResponse{Header: hdr}, Entry{Key: []byte("k"), Lease: 5, Revision: 9}},
		{"delete", "/etcdserverpb.KV/DeleteRange", &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b")},
			nil, Entry{Key: []byte("a"), RangeEnd: []byte("b")}},
		{"txn that ran", "/etcdserverpb.KV/Txn", txn, txnResp,
			Entry{Revision: 9, Ops: []Op{{Type: "put", Key: []byte("s1")}, {Type: "put", Key: []byte("in-f")}}}},
		{"txn that failed", "/etcdserverpb.KV/Txn", txn, nil,
			Entry{Ops: []Op{{Type: "put", Key: []byte("s1")}, {Type: "put", Key: []byte("in-s")}, {Type: "put", Key: []byte("in-f")},
				{Type: "delete_range", Key: []byte("f"), RangeEnd: []byte("g")}}}},
		{"compact", "/etcdserverpb.KV/Compact", &pb.CompactionRequest{Revision: 3, Physical: true}, &pb.CompactionResponse{Header: hdr},
			Entry{Detail: "revision=3 physical", Revision: 9}},
		{"lease grant", "/etcdserverpb.Lease/LeaseGrant", &pb.LeaseGrantRequest{TTL: 10}, &pb.LeaseGrantResponse{Header: hdr, ID: 77},
			Entry{Lease: 77, Detail: "ttl=10", Revision: 9}},
		{"lease revoke", "/etcdserverpb.Lease/LeaseRevoke", &pb.LeaseRevokeRequest{ID: 77}, nil, Entry{Lease: 77}},
		{"member add", "/etcdserverpb.Cluster/MemberAdd", &pb.MemberAddRequest{PeerURLs: []string{"http://a:2380"}, IsLearner: true},
			&pb.MemberAddResponse{Member: &pb.Member{ID: 0xabc}}, Entry{Member: 0xabc, Detail: "peer_urls=http://a:2380 learner"}},
		{"member remove", "/etcdserverpb.Cluster/MemberRemove", &pb.MemberRemoveRequest{ID: 0xdef}, nil, Entry{Member: 0xdef}},
		{"move leader", "/etcdserverpb.Maintenance/MoveLeader", &pb.MoveLeaderRequest{TargetID: 0x12}, nil, Entry{Member: 0x12}},
		{"alarm", "/etcdserverpb.Maintenance/Alarm", &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, Alarm: pb.AlarmType_NOSPACE, MemberID: 3},
			nil, Entry{Member: 3, Detail: "DEACTIVATE NOSPACE"}},
		{"authenticate", "/etcdserverpb.Auth/Authenticate", &pb.AuthenticateRequest{Name: "alice", Password: "hunter2"}, nil,
			Entry{Name: "alice"}},
		{"user add", "/etcdserverpb.Auth/UserAdd", &pb.AuthUserAddRequest{Name: "bob", Password: "hunter2"}, nil, Entry{Name: "bob"}},
		{"grant role", "/etcdserverpb.Auth/UserGrantRole", &pb.AuthUserGrantRoleRequest{User: "bob", Role: "r"}, nil,
			Entry{Name: "bob", Role: "r"}},
		{"revoke permission", "/etcdserverpb.Auth/RoleRevokePermission",
			&pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("a"), RangeEnd: []byte("b")}, nil,
			Entry{Role: "r", Key: []byte("a"), RangeEnd: []byte("b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Entry
			Describe(&got, tc.method, tc.req, tc.resp)
			tc.want.RPC = tc.method
			g, w := got.AppendJSON(nil), tc.want.AppendJSON(nil)
			if !bytes.Equal(g, w) {
				t.Errorf("got  %s\nwant %s", g, w)
			}
			if bytes.Contains(g, []byte("secret-value")) || bytes.Contains(g, []byte("hunter2")) {
				t.Errorf("a value or password was logged: %s", g)
			}
		})
	}
}

// TestTxnOpsBounded: a txn with more than MaxOps writes lists MaxOps and
// counts the rest.
func TestTxnOpsBounded(t *testing.T) {
	txn := &pb.TxnRequest{}
	for i := 0; i < MaxOps+5; i++ {
		txn.Success = append(txn.Success, put("k"))
	}
	var e Entry
	Describe(&e, "/etcdserverpb.KV/Txn", txn, nil)
	if len(e.Ops) != MaxOps || e.OpsTruncated != 5 {
		t.Fatalf("ops %d, truncated %d", len(e.Ops), e.OpsTruncated)
	}
}

// gate is an io.Writer that blocks until opened.
type gate struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	open chan struct{}
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

// TestOverflowWritesOneDroppedLine: with the writer stuck, Record never
// blocks; the entries that did not fit are counted and reported by one
// line at the place they were lost.
func TestOverflowWritesOneDroppedLine(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	l, err := Open(Config{Output: g, Buffer: 4, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(i int) {
		l.Record(Entry{Time: t0, RPC: "/etcdserverpb.KV/Put", Key: []byte{'a' + byte(i)}, Code: "OK"})
	}
	// The writer takes the first entry and blocks writing it; then the
	// queue (4) fills. Wait for the writer to hold the first.
	rec(0)
	deadline := time.Now().Add(5 * time.Second)
	for len(l.queue) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("writer never took the first entry")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 10; i++ { // 4 fit, 6 are dropped
		rec(i)
	}
	if l.Dropped() != 6 {
		t.Fatalf("dropped %d, want 6", l.Dropped())
	}
	close(g.open)
	for len(l.queue) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("writer never drained")
		}
		time.Sleep(time.Millisecond)
	}
	rec(11) // room again: preceded by the dropped line
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	sc := bufio.NewScanner(&g.buf)
	for sc.Scan() {
		var m struct {
			Key     string `json:"key"`
			Dropped int    `json:"dropped_entries"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if m.Dropped != 0 {
			keys = append(keys, "dropped:"+string(rune('0'+m.Dropped)))
		} else {
			keys = append(keys, m.Key)
		}
	}
	if got, want := strings.Join(keys, " "), "a b c d e dropped:6 l"; got != want {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

// TestDroppedLineAtClose: entries dropped just before Close are still
// reported.
func TestDroppedLineAtClose(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	l, _ := Open(Config{Output: g, Buffer: 1, Now: func() time.Time { return t0 }})
	for i := 0; i < 5; i++ {
		l.Record(Entry{Time: t0, RPC: "/etcdserverpb.KV/Put", Code: "OK"})
	}
	close(g.open)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(g.buf.String()), "\n")
	last := lines[len(lines)-1]
	var m struct {
		Dropped uint64 `json:"dropped_entries"`
	}
	if err := json.Unmarshal([]byte(last), &m); err != nil || m.Dropped == 0 || uint64(len(lines)-1)+m.Dropped != 5 {
		t.Fatalf("lines %q: last must report the %d dropped", lines, l.Dropped())
	}
}

// TestRotation: the file is renamed to PATH.1 (and older ones shifted)
// before a line would take it past the limit; at most MaxBackups are kept
// and no line is split or lost.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	r, err := openRotating(path, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 299) + "\n") // 300 bytes: 3 per file
	for i := 0; i < 11; i++ {
		l := append([]byte(nil), line...)
		l[0] = byte('A' + i)
		if err := r.WriteLine(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	firsts := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var s string
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if len(l) != 299 {
				t.Fatalf("%s: split line %q", name, l)
			}
			s += l[:1]
		}
		return s
	}
	for name, want := range map[string]string{path: "JK", path + ".1": "GHI", path + ".2": "DEF"} {
		if got := firsts(name); got != want {
			t.Errorf("%s holds %q, want %q", name, got, want)
		}
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("a third backup exists: %v", err)
	}
	// Reopening appends to the existing file and knows its size.
	r, err = openRotating(path, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := r.WriteLine(line); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	if got := firsts(path); got != "x" {
		t.Errorf("after a rotation keeping no backups the file holds %q", got)
	}
	if got := firsts(path + ".1"); got != "GHI" {
		t.Errorf("MaxBackups 0 must not touch existing backups when it removes the file: %q", got)
	}
}
