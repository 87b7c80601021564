package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// valueSite is one place a value's bytes were found in a data directory.
type valueSite struct {
	path string
	off  int
}

// findValue returns every place v occurs in the files under dir.
func findValue(t *testing.T, dir string, v []byte) []valueSite {
	t.Helper()
	var out []valueSite
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for off := 0; ; {
			i := bytes.Index(b[off:], v)
			if i < 0 {
				break
			}
			out = append(out, valueSite{p, off + i})
			off += i + 1
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipBitAt flips the lowest bit of the byte at off in path.
func flipBitAt(t *testing.T, path string, off int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, int64(off)); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, int64(off)); err != nil {
		t.Fatal(err)
	}
}

// corruptionCluster is a 3-member cluster holding a distinctive value
// under "m-victim" between two runs of filler keys (so the value's
// sstable block holds neither metadata nor the raft state).
func corruptionCluster(t *testing.T) (*Cluster, string) {
	cl := startCluster(t, "synod", 3)
	cli := newClient(t, cl.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Letters g–v only: no 4-byte run of the value can occur in the hex
	// fillers, so the sstable's block compression (snappy) never encodes part
	// of it as a copy of a filler and the value stays byte for byte on disk.
	// With a random hex value, 2 of 12 runs on Pebble v2 found neither copy
	// of it in the sstable.
	value := "corrupt-me-" + strings.Map(func(r rune) rune {
		return 'g' + rune(strings.IndexRune("0123456789abcdef", r))
	}, randHex(24))
	filler := func(prefix string, n int) {
		for i := 0; i < n; i++ {
			if _, err := cli.Put(ctx, fmt.Sprintf("%s-%03d", prefix, i), strings.Repeat(randHex(16), 32)); err != nil {
				t.Fatal(err)
			}
		}
	}
	filler("a-fill", 60)
	if _, err := cli.Put(ctx, "m-victim", value); err != nil {
		t.Fatal(err)
	}
	// Enough after the victim that its record is in a write-ahead log
	// file Pebble has rotated away from (its first memtable, 256 KiB, is
	// full), in each of the member's two databases: Pebble tells a
	// damaged record from a torn tail only in a WAL file that is not the
	// last one, and replays the last one up to the damage, as it would
	// a torn write (docs/security.md).
	filler("z-fill", 450)
	cl.WaitConverged(30 * time.Second)
	return cl, value
}

// checkNeverServed restarts member i after its data was damaged and checks
// it never serves a wrong m-victim: it either refuses to start (and says
// why: want is in its last log line) or serves the right value; the other
// members serve the right value throughout. It returns whether i started.
func checkNeverServed(t *testing.T, cl *Cluster, i int, value, want string) bool {
	t.Helper()
	m := cl.Members[i]
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	readyErr := cl.waitMemberReady(m, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for j, o := range cl.Members {
		if j == i {
			continue
		}
		r, err := o.client(t).Get(ctx, "m-victim")
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != value {
			t.Fatalf("%s: m-victim = %v, %v; want the written value", o.Name, r, err)
		}
	}
	if readyErr != nil {
		if m.Running() {
			// Started, and refuses what it cannot read (the readiness
			// probe's key shares the damaged block): the victim must be
			// refused too, as corrupt, never served.
			r, err := m.client(t).Get(ctx, "m-victim", clientv3.WithSerializable())
			if err == nil || !strings.Contains(err.Error(), "corrupt") {
				t.Fatalf("%s neither ready nor stopped (%v); m-victim = %v, %v", m.Name, readyErr, r, err)
			}
			t.Logf("%s started and refuses m-victim: %v", m.Name, err)
			return true
		}
		lines := strings.Split(strings.TrimSpace(m.LogText()), "\n")
		last := lines[len(lines)-1]
		if !strings.Contains(last, want) || m.exitStatus() == nil {
			t.Fatalf("%s stopped (%v) with last line %q; want a non-zero exit saying %q", m.Name, m.exitStatus(), last, want)
		}
		t.Logf("%s refused to start: %s", m.Name, last)
		return false
	}
	r, err := m.client(t).Get(ctx, "m-victim", clientv3.WithSerializable())
	if err == nil && (len(r.Kvs) != 1 || string(r.Kvs[0].Value) != value) {
		t.Fatalf("%s served m-victim = %v after its value was damaged", m.Name, r.Kvs)
	}
	t.Logf("%s started and answers m-victim with %v, %v", m.Name, r, err)
	return true
}

// TestCorruptValueNeverServed stops a member cleanly (its memtable is
// flushed, so the data is in sstables), flips one bit of the distinctive
// value inside the member's sstable, and restarts it. A restart reads no
// value it does not need (with no lease it does not scan the keyspace), so
// the member may start; every read of the damaged block then fails its
// checksum and is refused as corrupt, with an error naming the table and
// the mismatch: the value is never served. The other members keep serving
// the right value.
func TestCorruptValueNeverServed(t *testing.T) {
	corruptSSTable(t, tagKeyValueValue, "the key's version record", true)
}

// TestCorruptRaftLogNeverServed flips one bit of the value in the raft log
// entry that carried the put, in an sstable. Raft reads that entry when the
// member restarts; the read fails its checksum and the member refuses to
// start, saying so (not with raft's panic), and the others serve on.
func TestCorruptRaftLogNeverServed(t *testing.T) {
	corruptSSTable(t, tagPutRequestValue, "the raft log entry of the put", false)
}

// The protobuf tag byte in front of the value's length: which record a copy
// of the value found on disk belongs to.
const (
	tagKeyValueValue   = 0x2a // mvccpb.KeyValue.value (field 5): the version record
	tagPutRequestValue = 0x12 // PutRequest.value (field 2): the raft log entry
)

// corruptSSTable stops a member after a clean flush, flips one bit of the
// victim value in the sstable record tagged tag, and checks the member
// never serves a wrong value; unless mayStart, it must refuse to start.
func corruptSSTable(t *testing.T, tag byte, what string, mayStart bool) {
	cl, value := corruptionCluster(t)
	victim := cl.Members[2]
	cl.StopMember(2)
	var site *valueSite
	for _, s := range findValue(t, victim.DataDir, []byte(value)) {
		if strings.HasSuffix(s.path, ".sst") && s.off >= 2 && readByte(t, s.path, s.off-2) == tag {
			site = &s
		}
	}
	if site == nil {
		t.Fatalf("%s is in no sstable after a clean stop", what)
	}
	flipBitAt(t, site.path, site.off+len(value)/2)
	if checkNeverServed(t, cl, 2, value, "stored record failed its checksum") && !mayStart {
		t.Fatalf("%s started with a damaged sstable (%s)", victim.Name, what)
	}
	if !strings.Contains(victim.LogText(), "checksum mismatch") {
		t.Errorf("the error does not say what failed")
	}
}

// readByte returns the byte at off in the file at path.
func readByte(t *testing.T, path string, off int) byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[off]
}

// TestCorruptWALNeverServed kills a member (so the value is only in its
// write-ahead logs) and flips one bit of the value in the raft log's. The WAL record's
// checksum fails while valid records follow it, so Pebble refuses to
// replay the log and the member refuses to start; the others serve on.
// (A damaged record that is the very last one of the log is
// indistinguishable from a torn write and is dropped; see
// docs/security.md.)
func TestCorruptWALNeverServed(t *testing.T) {
	cl, value := corruptionCluster(t)
	victim := cl.Members[2]
	cl.Kill9(2)
	var site *valueSite
	for _, s := range findValue(t, victim.DataDir, []byte(value)) {
		if strings.HasSuffix(s.path, ".log") && strings.Contains(s.path, "/raftlog/") {
			site = &s
		}
	}
	if site == nil {
		t.Fatalf("the value is in no WAL after kill -9")
	}
	flipBitAt(t, site.path, site.off+len(value)/2)
	if checkNeverServed(t, cl, 2, value, "error when replaying WAL") {
		t.Fatalf("%s started with a damaged WAL record", victim.Name)
	}
}
