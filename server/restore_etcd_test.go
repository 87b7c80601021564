package server

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/etcdsnap"
	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/storage"
)

// etcdRecorded is a snapshot saved from a real etcd 3.7.3 and what that
// etcd showed (etcdsnap/testdata/README.md).
const etcdRecorded = "../etcdsnap/testdata/etcd-3.7.3"

func restoreConfig(t *testing.T) Config {
	t.Helper()
	cfg := NewConfig()
	cfg.Name = "r0"
	cfg.DataDir = filepath.Join(t.TempDir(), "r0")
	cfg.InitialCluster = "r0=http://127.0.0.1:2380,r1=http://127.0.0.1:2381,r2=http://127.0.0.1:2382"
	cfg.InitialClusterToken = "migrated"
	return cfg
}

// TestRestoreEtcdSnapshot restores the real etcd's file and finds, without
// an etcd binary, what that etcd served: the same HashKV at its revision
// with its compaction revision, the same keys, the lease with its TTL, the
// auth state with working passwords; and a raft log that starts from a
// snapshot of the new three-member configuration, applied.
func TestRestoreEtcdSnapshot(t *testing.T) {
	dbs, err := filepath.Glob("../etcdsnap/testdata/etcd-*.db")
	if err != nil || len(dbs) == 0 {
		t.Fatalf("no recorded etcd snapshots: %v", err)
	}
	for _, db := range dbs {
		base := strings.TrimSuffix(db, ".db")
		t.Run(filepath.Base(base), func(t *testing.T) { checkRestoredEtcd(t, base) })
	}
}

// checkRestoredEtcd restores the recorded file base.db and compares it
// with base.json, what the etcd that wrote it showed.
func checkRestoredEtcd(t *testing.T, base string) {
	var want struct {
		CompactRevision int64             `json:"compact_revision"`
		Get             *pb.RangeResponse `json:"get"`
		HashKV          []struct {
			HashKV *pb.HashKVResponse `json:"HashKV"`
		} `json:"hashkv"`
		Auth struct {
			AuthRevision uint64 `json:"authRevision"`
		} `json:"auth"`
	}
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil || want.Get == nil || len(want.HashKV) != 1 || want.HashKV[0].HashKV == nil {
		t.Fatalf("recorded view: %v", err)
	}
	res, db, st := openRestored(t, base+".db")
	rev := want.Get.Header.Revision
	if res.Rev != rev || res.CompactRev != want.CompactRevision || res.Members != 3 {
		t.Errorf("restore result %+v, want revision %d compacted at %d", res, rev, want.CompactRevision)
	}
	h, hashRev, compactRev, err := st.HashKV(rev)
	w := want.HashKV[0].HashKV
	if w.HashRevision == 0 { // etcd 3.5 answers no hash revision (it came in 3.6)
		w.HashRevision = rev
	}
	if err != nil || h != w.Hash || hashRev != w.HashRevision || compactRev != w.CompactRevision {
		t.Errorf("HashKV(%d) = %d at %d compacted %d (%v); etcd: %d at %d compacted %d", rev, h, hashRev, compactRev, err, w.Hash, w.HashRevision, w.CompactRevision)
	}
	got, err := st.Range(context.Background(), &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil || len(got.Kvs) != len(want.Get.Kvs) {
		t.Fatalf("range: %v, %d keys; etcd served %d", err, len(got.GetKvs()), len(want.Get.Kvs))
	}
	for i := range got.Kvs {
		if !proto.Equal(got.Kvs[i], want.Get.Kvs[i]) {
			t.Errorf("key %d: %v, etcd served %v", i, got.Kvs[i], want.Get.Kvs[i])
		}
	}
	if idx, term := st.Applied(); idx != 3 || term != 1 {
		t.Errorf("applied %d/%d, want 3/1 (the raft snapshot the log starts from)", idx, term)
	}
	checkRestoredOthers(t, db, want.Auth.AuthRevision)
}

// openRestored restores file as member r0 of a new three-member cluster
// and opens the result's database and store (closed at the end of t).
func openRestored(t *testing.T, file string) (RestoreResult, *pebble.DB, *mvcc.Store) {
	t.Helper()
	cfg := restoreConfig(t)
	res, err := RestoreSnapshot(cfg, file, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := openPebble(filepath.Join(cfg.DataDir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := mvcc.Open(db, mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return res, db, st
}

// checkRestoredOthers checks the leases, the auth state and the raft log
// start of the restored database.
func checkRestoredOthers(t *testing.T, db membership.Reader, authRev uint64) {
	t.Helper()
	ls, err := lease.ReadRecords(db)
	if err != nil || len(ls) != 1 || ls[0].TTL != 600 || ls[0].RenewIndex != 0 {
		t.Errorf("leases %+v, %v", ls, err)
	}
	a, err := auth.Load(db)
	if err != nil {
		t.Fatal(err)
	}
	if on, rev := a.Status(); !on || rev != authRev {
		t.Errorf("auth enabled %v revision %d, want on at %d", on, rev, authRev)
	}
	if err := a.CheckPassword("u1", "u1pw"); err != nil {
		t.Errorf("u1's password: %v", err)
	}
}

// TestRestoreEtcdSnapshotRaftStart: the log of a restored member starts
// from a snapshot at index len(members), term 1, whose configuration holds
// every member as a voter.
func TestRestoreEtcdSnapshotRaftStart(t *testing.T) {
	cfg := restoreConfig(t)
	res, err := RestoreSnapshot(cfg, etcdRecorded+".db", RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := openLogPebble(logDBDir(&cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ls, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := ls.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	md := snap.GetMetadata()
	hs, cs, err := ls.InitialState()
	if err != nil || md.GetIndex() != 3 || md.GetTerm() != 1 || len(cs.GetVoters()) != 3 || hs.GetCommit() != 3 {
		t.Errorf("log starts at %d/%d, voters %v, commit %d (%v); want 3/1, 3 voters, commit 3", md.GetIndex(), md.GetTerm(), cs.GetVoters(), hs.GetCommit(), err)
	}
	if res.Members != 3 {
		t.Errorf("restored %d members", res.Members)
	}
}

// TestRestoreEtcdSnapshotDamaged: a damaged etcd file is refused with
// etcdutl's words and leaves no data directory.
func TestRestoreEtcdSnapshotDamaged(t *testing.T) {
	data, err := os.ReadFile(etcdRecorded + ".db")
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := restoreConfig(t)
	if _, err := RestoreSnapshot(cfg, bad, RestoreOptions{}); !errors.Is(err, etcdsnap.ErrIntegrity) {
		t.Errorf("damaged file: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("a failed restore left %s: %v", cfg.DataDir, err)
	}
	// With the check skipped, the damage is found by bbolt or the importer
	// (or is harmless); nothing panics.
	if _, err := RestoreSnapshot(cfg, bad, RestoreOptions{SkipHashCheck: true}); err != nil {
		if _, serr := os.Stat(cfg.DataDir); !os.IsNotExist(serr) {
			t.Errorf("a failed restore (%v) left %s", err, cfg.DataDir)
		}
	}
}
