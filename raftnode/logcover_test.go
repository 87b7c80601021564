package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/storage"
)

// putAll proposes n puts k000.. through the leader and waits until every
// member applied them; it returns the leader and the last applied index.
func (c *memCluster) putAll(t *testing.T, n int) (lead, applied uint64) {
	t.Helper()
	lead = c.waitLeader()
	for i := 0; i < n; i++ {
		if _, err := c.members[lead].node.Propose(tctx(t), put(fmt.Sprintf("k%03d", i), "v")); err != nil {
			t.Fatal(err)
		}
	}
	applied = c.members[lead].node.AppliedIndex()
	waitFor(t, func() bool {
		for _, m := range c.members {
			if m.node.AppliedIndex() < applied {
				return false
			}
		}
		return true
	})
	return lead, applied
}

// editLog stops member id and runs fn on its raft log (the database the
// members of a memCluster share with their state).
func (c *memCluster) editLog(t *testing.T, id uint64, fn func(db *pebble.DB, log *storage.LogStore)) vfs.FS {
	t.Helper()
	fs := c.members[id].fs
	c.stop(id)
	db, err := pebble.Open("db", &pebble.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	log, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	fn(db, log)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return fs
}

// A member whose raft log lost its last entries (as Pebble drops the
// records after damage in its newest WAL file) though its state applied
// them, or whose stored HardState commits past the log's end, refuses to
// start with ErrLogBehindState, saying where the log ends, instead of
// raft's panic.
func TestLogBehindStateRefused(t *testing.T) {
	c := newMemCluster(t, 3, 10000)
	lead, applied := c.putAll(t, 20)
	var followers []uint64
	for id := range c.members {
		if id != lead {
			followers = append(followers, id)
		}
	}
	const keep = 10 // entries the damaged log still holds
	fs := c.editLog(t, followers[0], func(db *pebble.DB, _ *storage.LogStore) {
		// The entries' keys (storage/doc.go): 0x01 + index, big-endian.
		from := binary.BigEndian.AppendUint64([]byte{0x01}, keep+1)
		if err := db.DeleteRange(from, []byte{0x02}, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	})
	err := c.tryStart(followers[0], fs, nil)
	want := fmt.Sprintf("the state has applied entries up to index %d, but the raft log ends at index %d", applied, keep)
	if !errors.Is(err, ErrLogBehindState) || !strings.Contains(err.Error(), want) {
		t.Fatalf("start over a log that lost applied entries: %v; want ErrLogBehindState saying %q", err, want)
	}

	fs = c.editLog(t, followers[1], func(_ *pebble.DB, log *storage.LogStore) {
		hs, _, err := log.InitialState()
		if err != nil {
			t.Fatal(err)
		}
		hs.Commit = proto.Uint64(applied + 5)
		if err := log.Save(hs, nil, true); err != nil {
			t.Fatal(err)
		}
	})
	err = c.tryStart(followers[1], fs, nil)
	want = fmt.Sprintf("its stored HardState commits entries up to index %d, but the raft log ends at index %d", applied+5, applied)
	if !errors.Is(err, ErrLogBehindState) || !strings.Contains(err.Error(), want) {
		t.Fatalf("start over a HardState committing past the log: %v; want ErrLogBehindState saying %q", err, want)
	}
}

// errCrash stands for the process dying in the middle of an install.
var errCrash = errors.New("test: crashed")

// crashingApplier dies (its Restore fails, which stops the raft loop) just
// before or just after it restores the state from a received snapshot.
type crashingApplier struct {
	Applier
	after bool
}

func (a crashingApplier) Restore(index, term uint64) error {
	if a.after {
		if err := a.Applier.Restore(index, term); err != nil {
			return err
		}
	}
	return errCrash
}

// A member that dies between the steps of a snapshot install (the log
// reset, then the state restored from the received snapshot) starts again,
// finishes the install and catches up: at no point of the install is the
// state ahead of the log, which the start would refuse
// (TestLogBehindStateRefused).
func TestSnapshotInstallInterruptedByCrash(t *testing.T) {
	for _, after := range []bool{false, true} {
		name := map[bool]string{false: "after the log reset", true: "after the state restore"}[after]
		t.Run(name, func(t *testing.T) {
			c := newMemCluster(t, 3, 10)
			lead := c.waitLeader()
			lag := lead%3 + 1
			fs := c.members[lag].fs
			c.stop(lag)
			lead, _ = c.putAll(t, 100)
			if err := c.tryStart(lag, fs, func(a Applier) Applier { return crashingApplier{a, after} }); err != nil {
				t.Fatal(err)
			}
			n := c.members[lag].node
			waitFor(t, func() bool { return n.Err() != nil })
			if !errors.Is(n.Err(), errCrash) {
				t.Fatalf("the member stopped on %v, not in the install", n.Err())
			}
			c.stop(lag)
			if err := c.tryStart(lag, fs, nil); err != nil {
				t.Fatalf("restart after a crash %s: %v", name, err)
			}
			m := c.members[lag]
			waitFor(t, func() bool {
				v, err := c.get(t, m, "k099")
				return err == nil && v == "v"
			})
			if _, err := m.node.Propose(tctx(t), put("after", "crash")); err != nil {
				t.Fatal(err)
			}
			rev := m.store.Rev()
			for _, o := range c.members {
				waitForMsg(t, func() (bool, string) {
					return o.store.Rev() == rev, fmt.Sprintf("member %d at revision %d, member %d at %d", o.id, o.store.Rev(), lag, rev)
				})
				h1, _, _, err1 := m.store.HashKV(rev)
				h2, _, _, err2 := o.store.HashKV(rev)
				if err1 != nil || err2 != nil || h1 != h2 {
					t.Fatalf("after the interrupted install: hash %x (%v), member %d's %x (%v)", h1, err1, o.id, h2, err2)
				}
			}
		})
	}
}

// waitForMsg is waitFor saying what was last seen when it gives up.
func waitForMsg(t *testing.T, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A member whose log lost entries it had acknowledged, but whose state had
// not applied them durably either, starts; the leader then commits past
// the end of its log, and raft's panic on that (commitTo) stops the loop
// with ErrLogBehindState, saying where the log ends, not with a stack
// trace.
func TestLeaderCommitPastLogIsFatal(t *testing.T) {
	c := newMemCluster(t, 3, 10000)
	lead, _ := c.putAll(t, 5)
	f := lead%3 + 1
	n := c.members[f].node
	last, err := c.members[f].node.c.cfg.Log.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	// A heartbeat as the leader sends it to a follower it counts as
	// holding entries up to last+40.
	n.Process(&raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(lead), To: proto.Uint64(f),
		Term: proto.Uint64(n.Term()), Commit: proto.Uint64(last + 40)})
	waitFor(t, func() bool { return n.Err() != nil })
	want := fmt.Sprintf("the leader commits entries up to index %d, which this member acknowledged, but the raft log ends at index %d", last+40, last)
	if err := n.Err(); !errors.Is(err, ErrLogBehindState) || !strings.Contains(err.Error(), want) {
		t.Fatalf("after a heartbeat committing past the log: %v; want ErrLogBehindState saying %q", err, want)
	}
}
