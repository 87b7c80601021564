package server

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/storage"
)

// ErrDataDirExists is returned by RestoreSnapshot when the target data
// directory already exists: a restore never overwrites data.
var ErrDataDirExists = errors.New("server: data directory exists")

// RestoreOptions are etcdutl's snapshot restore options beyond the member
// configuration.
type RestoreOptions struct {
	// SkipHashCheck accepts a file without its sha256 trailer (a raft
	// snapshot copied out of a data directory).
	SkipHashCheck bool
	// BumpRevision is added to the restored revision.
	BumpRevision int64
	// MarkCompacted makes the restored revision the compaction revision.
	MarkCompacted bool
}

// RestoreResult describes a restored data directory.
type RestoreResult struct {
	// MemberID and ClusterID are the new member's and cluster's IDs.
	MemberID, ClusterID uint64
	// Rev and CompactRev are the restored current and compaction revisions.
	Rev, CompactRev int64
	// Members is the size of the new membership.
	Members int
}

// RestoreSnapshot creates cfg.DataDir for a member of a NEW cluster from a
// snapshot file written by `etcdctl snapshot save` (or `synod` itself): the
// same keys, versions and revisions; the membership and IDs come from cfg's
// --name, --initial-cluster, --initial-cluster-token and
// --initial-advertise-peer-urls, as etcdutl's restore; the old membership
// and the old cluster's alarms (they name old members) are dropped. The file
// is verified (sha256 and snapshot checksum) before anything is created; on
// any failure the new directory is removed. `synod serve` with that data
// directory then starts the new cluster.
func RestoreSnapshot(cfg Config, path string, opts RestoreOptions) (RestoreResult, error) {
	if err := cfg.Validate(); err != nil {
		return RestoreResult{}, err
	}
	if opts.BumpRevision < 0 || (opts.MarkCompacted && opts.BumpRevision == 0) || (!opts.MarkCompacted && opts.BumpRevision > 0) {
		return RestoreResult{}, fmt.Errorf("%w: --mark-compacted is required with --bump-revision > 0 and allowed only with it", ErrConfig)
	}
	f, err := cfg.founders()
	if err != nil {
		return RestoreResult{}, err
	}
	for _, dir := range []string{cfg.DataDir, logDBDir(&cfg)} {
		if _, err := os.Stat(dir); err == nil {
			return RestoreResult{}, fmt.Errorf("%w: %s", ErrDataDirExists, dir)
		}
	}
	imp, err := openImport(path, opts)
	if err != nil {
		return RestoreResult{}, err
	}
	defer imp.close()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return RestoreResult{}, fmt.Errorf("server: create data dir: %w", err)
	}
	res, err := restoreInto(filepath.Join(cfg.DataDir, "db"), logDBDir(&cfg), imp, f)
	if err != nil {
		_ = os.RemoveAll(cfg.DataDir)
		_ = os.RemoveAll(logDBDir(&cfg))
		return RestoreResult{}, err
	}
	return res, nil
}

// importer writes a verified snapshot file's state into an empty database.
type importer interface {
	// importInto imports into db, recording applied as the applied index
	// (term 1).
	importInto(db *pebble.DB, applied uint64) (mvcc.ImportResult, error)
	close()
}

// openImport detects the file's format by its content (synod's snapshot
// stream starts with its magic; anything else is taken for etcd's bbolt
// format, whose checks then name what is wrong) and verifies the file.
func openImport(path string, opts RestoreOptions) (importer, error) {
	head := make([]byte, 64)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("server: open snapshot file: %w", err)
	}
	n, _ := io.ReadFull(f, head)
	_ = f.Close()
	if mvcc.IsSnapshotStream(head[:n]) {
		if _, err := mvcc.VerifyBackup(path, opts.SkipHashCheck); err != nil {
			return nil, err
		}
		return synodImport{path: path, opts: opts}, nil
	}
	return openEtcdImport(path, opts)
}

// synodImport restores a file in synod's own format (mvcc.ImportBackup).
type synodImport struct {
	path string
	opts RestoreOptions
}

func (s synodImport) importInto(db *pebble.DB, applied uint64) (mvcc.ImportResult, error) {
	keep := func(k []byte) bool { return k[0] != membership.Prefix && k[0] != alarm.Prefix }
	return mvcc.ImportBackup(db, s.path, mvcc.ImportOptions{
		SkipHashCheck: s.opts.SkipHashCheck, BumpRevision: s.opts.BumpRevision, MarkCompacted: s.opts.MarkCompacted, Keep: keep,
		Applied: applied, AppliedTerm: restoredTerm,
	})
}

func (synodImport) close() {}

// restoredTerm is the raft term of the snapshot a restored member's log
// starts from.
const restoredTerm = 1

// restoreInto imports the snapshot into a new state database at dir and
// writes the new membership, this member's identity and, in a new raft log
// database at logDir, the raft log's starting point,
// as etcdutl does: a raft snapshot at index len(members), term 1, whose
// configuration is the new membership, with the state recorded as applied
// up to it. Every member restored with the same flags starts from the same
// point, and no bootstrap configuration entry is ever applied (the
// membership is already stored), so restarts replay nothing of it.
func restoreInto(dir, logDir string, imp importer, f founding) (res RestoreResult, err error) {
	db, err := openPebble(dir)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("server: open database: %w", err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("server: close database: %w", cerr)
		}
	}()
	applied := uint64(len(f.members))
	im, err := imp.importInto(db, applied)
	if err != nil {
		return RestoreResult{}, err
	}
	ms := membership.NewStore()
	b := db.NewBatch()
	defer b.Close()
	for _, mem := range f.members {
		if err := ms.Put(b, mem); err != nil {
			return RestoreResult{}, err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return RestoreResult{}, fmt.Errorf("server: write membership: %w", err)
	}
	if err := startRaftLog(logDir, f, applied); err != nil {
		return RestoreResult{}, err
	}
	if err := writeIdentity(db, identity{memberID: f.self, clusterID: f.clusterID}); err != nil {
		return RestoreResult{}, err
	}
	return RestoreResult{MemberID: f.self, ClusterID: f.clusterID, Rev: im.Rev, CompactRev: im.CompactRev, Members: len(f.members)}, nil
}

// startRaftLog creates the raft log's database at dir and makes the log
// start from a snapshot at index applied, term restoredTerm, with every
// founding member a voter, and a HardState that has committed it. The
// state it follows is already synced (raftnode's rule: the state is
// durable through a log's start before the log is).
func startRaftLog(dir string, f founding, applied uint64) (err error) {
	db, err := openLogPebble(dir)
	if err != nil {
		return fmt.Errorf("server: create the raft log's database: %w", err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("server: close the raft log's database: %w", cerr)
		}
	}()
	ls, err := storage.Open(db)
	if err != nil {
		return err
	}
	cs := &raftpb.ConfState{}
	for _, mem := range f.members {
		cs.Voters = append(cs.Voters, mem.ID)
	}
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(applied), Term: proto.Uint64(restoredTerm), ConfState: cs,
	}}
	if err := ls.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("server: start raft log: %w", err)
	}
	hs := &raftpb.HardState{Term: proto.Uint64(restoredTerm), Commit: proto.Uint64(applied)}
	if err := ls.Save(hs, nil, true); err != nil {
		return fmt.Errorf("server: start raft log: %w", err)
	}
	return nil
}
