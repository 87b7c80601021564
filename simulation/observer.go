package simulation

import (
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/statemachine"
)

// observer watches one incarnation of a member through the hooks the
// server uses too: it is the state machine's Watchers (as watch.Hub is)
// and its OnConfChange (as the server's transport hook is). The raft Core
// applies through the production Machine itself; the observer only traces,
// stops a member that applied its own or another's removal (as the server
// stops a removed member), and checks every revision handed to the
// watchers against the store's own history.
type observer struct {
	m  *member
	sm *statemachine.Machine

	// nextRev is the revision the next notified revision must be: every
	// revision is notified once, in order, with no gap (0: none seen yet,
	// or the state was replaced by a snapshot).
	nextRev int64
	err     error // the first broken watch guarantee
}

var _ statemachine.Watchers = (*observer)(nil)

// onConfChange follows an accepted membership change.
func (o *observer) onConfChange(c membership.Change) {
	o.m.c.tracef("conf %x %s %x", o.m.id, c.Type, c.ID)
	if c.Type == raftpb.ConfChangeType_ConfChangeRemoveNode {
		o.m.c.removeMember(c.ID)
	}
}

// Resync follows a restore: the watch stream starts over from the new state.
func (o *observer) Resync() {
	o.nextRev = 0
	applied, _ := o.sm.Applied()
	o.m.c.tracef("restored %x at %d", o.m.id, applied)
}

// Notify receives the events of one committed revision, as watch.Hub does,
// and checks them: the revision follows the previous one with no gap and
// none twice, and its events are exactly those the store's revision log
// holds at that revision, in its order.
func (o *observer) Notify(rev int64, evs []*mvccpb.Event) {
	if o.err != nil {
		return
	}
	if o.nextRev != 0 && rev != o.nextRev {
		o.failf("watch: revision %d delivered after revision %d (each revision once, in order, no gap)", rev, o.nextRev-1)
		return
	}
	o.nextRev = rev + 1
	want, err := o.sm.KV().Events(rev, len(evs))
	if errors.Is(err, mvcc.ErrCompacted) {
		return
	}
	if err != nil {
		o.failf("watch: read events of revision %d: %v", rev, err)
		return
	}
	for i, ev := range evs {
		if ev.GetKv().GetModRevision() != rev || i >= len(want) || !sameEvent(ev, want[i]) {
			o.failf("watch: event %d of revision %d is %s, the revision log has %s", i, rev, describeEvent(ev), describeEventAt(want, i))
			return
		}
	}
	if len(want) > len(evs) && want[len(evs)].GetKv().GetModRevision() == rev {
		o.failf("watch: an event of revision %d was never delivered", rev)
	}
}

func (o *observer) failf(format string, args ...any) {
	o.err = fmt.Errorf("simulation: member %x: "+format, append([]any{o.m.id}, args...)...)
}

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
