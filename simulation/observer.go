package simulation

import (
	"errors"
	"fmt"
	"path/filepath"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
	"github.com/synod-db/synod/statemachine"
)

// observer stands between a member's raftnode.Core and its state machine
// and watches, without changing anything: every call goes to the
// production statemachine.Machine; the observer only traces what was
// applied, reacts to a member's removal as the server does, and checks the
// watch events the machine hands out (Notify) against the store's own
// history. One observer per incarnation of a member.
type observer struct {
	m  *member
	sm *statemachine.Machine

	// nextRev is the revision the next notified event must have: every
	// revision is notified once, in order, with no gap (0: none seen yet,
	// or the state was replaced by a snapshot).
	nextRev int64
	// notified collects the events handed out during the current Apply.
	notified []*mvccpb.Event
	err      error // the first broken watch guarantee
}

var _ raftnode.Applier = (*observer)(nil)

// Applied is the machine's applied position.
func (o *observer) Applied() (uint64, uint64) { return o.sm.Applied() }

// Apply applies a run with the machine, then checks its events.
func (o *observer) Apply(reqs []raftnode.Request, res []raftnode.Result) error {
	o.notified = o.notified[:0]
	if err := o.sm.Apply(reqs, res); err != nil {
		return err
	}
	last := reqs[len(reqs)-1]
	o.m.c.tracef("apply %x %d-%d/%d", o.m.id, reqs[0].Index, last.Index, last.Term)
	o.checkEvents()
	return nil
}

// ApplyConfChange applies a membership change with the machine; a member
// that applies its own or another's removal makes that member stop, as the
// server stops a removed member.
func (o *observer) ApplyConfChange(index, term uint64, cc *raftpb.ConfChange) (raftnode.Result, error) {
	r, err := o.sm.ApplyConfChange(index, term, cc)
	if err != nil {
		return r, err
	}
	o.m.c.tracef("conf %x %s %x at %d: %v", o.m.id, cc.GetType(), cc.GetNodeId(), index, r.Err)
	if r.Err == nil {
		o.m.c.confChanged(cc)
	}
	return r, nil
}

// ConfChangeRejected is the machine's record.
func (o *observer) ConfChangeRejected(index uint64) (bool, error) {
	return o.sm.ConfChangeRejected(index)
}

// NewSnapshot is the machine's snapshot.
func (o *observer) NewSnapshot() raftnode.Snapshot { return o.sm.NewSnapshot() }

// VerifySnapshot is the machine's check.
func (o *observer) VerifySnapshot(path string) error { return o.sm.VerifySnapshot(path) }

// Restore replaces the state; the watch stream starts over from it.
func (o *observer) Restore(path string) error {
	if err := o.sm.Restore(path); err != nil {
		return err
	}
	o.nextRev = 0
	o.m.c.tracef("restored %x from %s", o.m.id, filepath.Base(path))
	return nil
}

// Notify receives the events of a committed run, as watch.Hub does.
func (o *observer) Notify(rev int64, evs []*mvccpb.Event) {
	o.notified = append(o.notified, evs...)
}

// Resync follows a restore: the watch stream starts over from the new state.
func (o *observer) Resync() { o.nextRev = 0 }

// checkEvents checks the events notified during one Apply: revisions go up
// by one with no gap and none twice, and at each revision the events are
// exactly those the store's revision log holds, in its order.
func (o *observer) checkEvents() {
	if len(o.notified) == 0 || o.err != nil {
		return
	}
	first := o.notified[0].GetKv().GetModRevision()
	prev := o.nextRev - 1
	for i, ev := range o.notified {
		rev := ev.GetKv().GetModRevision()
		ok := rev == prev+1 || (i > 0 && rev == prev)
		if !ok && (i > 0 || o.nextRev != 0) {
			o.failf("watch: revision %d delivered after revision %d (each revision once, in order, no gap)", rev, prev)
			return
		}
		prev = rev
	}
	want, err := o.sm.KV().Events(first, len(o.notified)+1)
	if errors.Is(err, mvcc.ErrCompacted) {
		o.nextRev = lastRev(o.notified) + 1
		return
	}
	if err != nil {
		o.failf("watch: read events from %d: %v", first, err)
		return
	}
	for i, ev := range o.notified {
		if i >= len(want) || !sameEvent(ev, want[i]) {
			o.failf("watch: event %d of the run from revision %d is %s, the revision log has %s", i, first, describeEvent(ev), describeEventAt(want, i))
			return
		}
	}
	if len(want) > len(o.notified) && want[len(o.notified)].GetKv().GetModRevision() <= lastRev(o.notified) {
		o.failf("watch: an event of revision %d was never delivered", lastRev(o.notified))
		return
	}
	o.nextRev = lastRev(o.notified) + 1
}

func (o *observer) failf(format string, args ...any) {
	o.err = fmt.Errorf("simulation: member %x: "+format, append([]any{o.m.id}, args...)...)
}

func lastRev(evs []*mvccpb.Event) int64 { return evs[len(evs)-1].GetKv().GetModRevision() }

func sameEvent(a, b *mvccpb.Event) bool {
	ka, kb := a.GetKv(), b.GetKv()
	if a.GetType() != b.GetType() || string(ka.GetKey()) != string(kb.GetKey()) || ka.GetModRevision() != kb.GetModRevision() {
		return false
	}
	return a.GetType() == mvccpb.DELETE ||
		(string(ka.GetValue()) == string(kb.GetValue()) && ka.GetVersion() == kb.GetVersion() && ka.GetLease() == kb.GetLease())
}

func describeEvent(ev *mvccpb.Event) string {
	return fmt.Sprintf("%s %s=%q@%d", ev.GetType(), ev.GetKv().GetKey(), ev.GetKv().GetValue(), ev.GetKv().GetModRevision())
}

func describeEventAt(evs []*mvccpb.Event, i int) string {
	if i >= len(evs) {
		return "nothing"
	}
	return describeEvent(evs[i])
}
