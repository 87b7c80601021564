package lease

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// replica is one member's lessor applying the shared log on its own clock.
type replica struct {
	l   *Lessor
	clk *fakeClock
}

// snapshot is the replicated state of a lessor: records and attachments.
func (r replica) snapshot() map[int64][2]any {
	out := map[int64][2]any{}
	for _, id := range r.l.IDs() {
		st, _ := r.l.Lookup(id, true)
		out[id] = [2]any{Record{ID: id, TTL: st.TTL, RenewIndex: st.RenewIndex}, fmt.Sprint(st.Keys)}
	}
	return out
}

// Applying the same log on members whose clocks and apply times differ
// yields the same replicated state on every member, whoever leads and
// whatever expiries the leader proposes from its own clock.
func TestApplyIsDeterministicAcrossClocks(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			reps := make([]replica, 3)
			for i := range reps {
				clk := &fakeClock{now: time.Unix(int64(1000*i), 0)}
				reps[i] = replica{l: New(Config{Clock: clk.Now}), clk: clk}
			}
			var index uint64
			apply := func(plan func(l *Lessor) (Change, error), evs []*mvccpb.Event) {
				index++
				var first Change
				var firstErr error
				for i, r := range reps {
					// Each member applies a little later, by its own amount.
					r.clk.Advance(time.Duration(rng.Intn(50)) * time.Millisecond)
					c, err := plan(r.l)
					if i == 0 {
						first, firstErr = c, err
					} else if !reflect.DeepEqual(c, first) || fmt.Sprint(err) != fmt.Sprint(firstErr) {
						t.Fatalf("index %d: member %d planned %+v/%v, member 0 %+v/%v", index, i, c, err, first, firstErr)
					}
					r.l.Commit(c)
					r.l.ApplyEvents(evs)
				}
			}
			for step := 0; step < 300; step++ {
				for _, r := range reps {
					r.clk.Advance(time.Duration(rng.Intn(700)) * time.Millisecond)
				}
				id := int64(rng.Intn(6) + 1)
				switch op := rng.Intn(10); {
				case op < 2:
					ttl := int64(rng.Intn(5) + 1)
					apply(func(l *Lessor) (Change, error) { return l.PlanGrant(id, ttl, index+1) }, nil)
				case op < 4:
					apply(func(l *Lessor) (Change, error) {
						return l.PlanCheckpoints([]*pb.LeaseCheckpoint{{ID: id, Remaining_TTL: 1}}, index+1)
					}, nil)
				case op < 5:
					apply(func(l *Lessor) (Change, error) { return l.PlanRevoke(id) }, nil)
				case op < 7:
					key := fmt.Sprintf("k%d", rng.Intn(8))
					var ev *mvccpb.Event
					if lid := int64(rng.Intn(7)); reps[0].l.Exists(lid) || lid == 0 {
						ev = &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte(key), Lease: lid}}
					} else {
						ev = &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key)}}
					}
					apply(func(*Lessor) (Change, error) { return Change{}, nil }, []*mvccpb.Event{ev})
				default:
					// A random member leads and proposes what its own
					// clock says has expired; the log may hold an older
					// renewal index by the time it applies.
					lead := reps[rng.Intn(len(reps))]
					for _, e := range lead.l.Expired(2) {
						renew := e.RenewIndex
						if rng.Intn(3) == 0 && renew > 1 {
							renew-- // a stale expiry
						}
						apply(func(l *Lessor) (Change, error) {
							return l.PlanCheckpoints([]*pb.LeaseCheckpoint{{ID: e.ID, Remaining_TTL: -int64(renew)}}, index+1)
						}, nil)
					}
				}
				want := reps[0].snapshot()
				for i, r := range reps[1:] {
					if got := r.snapshot(); !reflect.DeepEqual(got, want) {
						t.Fatalf("step %d: member %d state %v, member 0 %v", step, i+1, got, want)
					}
				}
			}
			if st := reps[0].l.Stats(); st.Granted == 0 || st.Renewed == 0 || st.Revoked == 0 {
				t.Fatalf("the run exercised too little: %+v", st)
			}
		})
	}
}
