package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/metrics"
)

// stateMember opens, in a new data directory, a member's database and its
// state machine exactly as a starting member does (openMemberDB,
// openStateMachine), without raft or a transport.
func stateMember(t *testing.T) *Member {
	t.Helper()
	m := &Member{cfg: Config{DataDir: t.TempDir()}, log: slog.New(slog.DiscardHandler)}
	m.metrics = metrics.New()
	db, _, err := openMemberDB(&m.cfg, m.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.db = db
	if err := m.openStateMachine(); err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	t.Cleanup(m.closeStorage)
	return m
}

// putKeys applies a put of each key to m's keyspace, from raft index first.
func putKeys(t *testing.T, m *Member, first uint64, keys ...string) {
	t.Helper()
	for i, k := range keys {
		req := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte("v-" + k)}}
		if _, err := m.sm.KV().Apply(first+uint64(i), 1, req); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMemberRestoresByIngest: a member's snapshot restore ingests sstables
// into its own database, written next to it on its filesystem and removed
// after, and at the member's format the old keys are excised: the member
// ends with exactly the snapshot's keys.
func TestMemberRestoresByIngest(t *testing.T) {
	src, dst := stateMember(t), stateMember(t)
	var keys []string
	for i := 0; i < 500; i++ {
		keys = append(keys, fmt.Sprintf("k%04d", i))
	}
	putKeys(t, src, 1, keys...)
	putKeys(t, dst, 1, "a-old", "k0100x", "z-old")
	var stream bytes.Buffer
	sn := src.sm.NewSnapshot()
	_, err := sn.WriteTo(&stream)
	sn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if v := dst.db.FormatMajorVersion(); v < pebble.FormatVirtualSSTables {
		t.Fatalf("member database at format %s cannot excise", v)
	}
	ingests := dst.db.Metrics().Ingest.Count
	if err := dst.sm.ReceiveSnapshot(sn.Index(), sn.Term(), &stream); err != nil {
		t.Fatal(err)
	}
	if err := dst.sm.Restore(sn.Index(), sn.Term()); err != nil {
		t.Fatal(err)
	}
	if dst.db.Metrics().Ingest.Count == ingests {
		t.Fatal("the restore ingested nothing")
	}
	if left, err := os.ReadDir(filepath.Join(dst.cfg.DataDir, "db.ingest")); err != nil || len(left) != 0 {
		t.Fatalf("restore tables left next to the database: %v %v", left, err)
	}
	resp, err := dst.sm.KV().Range(t.Context(), &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != len(keys) {
		t.Fatalf("restored member has %d keys, want the snapshot's %d", len(resp.Kvs), len(keys))
	}
	for i, kv := range resp.Kvs {
		if string(kv.Key) != keys[i] {
			t.Fatalf("restored key %d is %q, want %q", i, kv.Key, keys[i])
		}
	}
	if got, want := dst.sm.KV().Rev(), src.sm.KV().Rev(); got != want {
		t.Fatalf("restored revision %d, want %d", got, want)
	}
}
