package integration

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type seenEvent struct {
	typ      mvccpb.Event_EventType
	key, val string
	rev      int64
	prev     string
}

// collect reads wch until it has n events or fails after 15s.
func collect(t *testing.T, wch clientv3.WatchChan, n int) []seenEvent {
	t.Helper()
	var out []seenEvent
	timeout := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case wr, ok := <-wch:
			if !ok {
				t.Fatalf("watch channel closed after %d events", len(out))
			}
			if err := wr.Err(); err != nil {
				t.Fatalf("watch error after %d events: %v", len(out), err)
			}
			for _, ev := range wr.Events {
				se := seenEvent{typ: ev.Type, key: string(ev.Kv.Key), val: string(ev.Kv.Value), rev: ev.Kv.ModRevision}
				if ev.PrevKv != nil {
					se.prev = string(ev.PrevKv.Value)
				}
				out = append(out, se)
			}
		case <-timeout:
			t.Fatalf("timed out with %d of %d events", len(out), n)
		}
	}
	return out
}

func TestWatchPastRevisionSeesHistory(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	var want []seenEvent
	first := int64(0)
	for i := 0; i < 5; i++ {
		r, err := cli.Put(ctx(t), "h/k", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		if first == 0 {
			first = r.Header.Revision
		}
		want = append(want, seenEvent{typ: mvccpb.Event_PUT, key: "h/k", val: fmt.Sprint(i), rev: r.Header.Revision})
	}
	d, err := cli.Delete(ctx(t), "h/k")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, seenEvent{typ: mvccpb.Event_DELETE, key: "h/k", rev: d.Header.Revision})
	for i := range c.members { // on every member, leader and followers
		got := collect(t, c.client(i).Watch(ctx(t), "h/", clientv3.WithPrefix(), clientv3.WithRev(first)), len(want))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("member %d: got %v, want %v", i, got, want)
		}
	}
}

func TestWatchConcurrentWritersIdenticalSequences(t *testing.T) {
	c := newCluster(t, 3, nil)
	start, err := c.client().Get(ctx(t), "x")
	if err != nil {
		t.Fatal(err)
	}
	from := start.Header.Revision + 1
	var chans []clientv3.WatchChan
	for i := range c.members {
		chans = append(chans, c.client(i).Watch(ctx(t), "c/", clientv3.WithPrefix(), clientv3.WithRev(from)))
	}
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := c.client(w % 3)
			for i := 0; i < each; i++ {
				if _, err := cli.Put(ctx(t), fmt.Sprintf("c/%d", w), fmt.Sprint(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var first []seenEvent
	for i, wch := range chans {
		got := collect(t, wch, writers*each)
		for j, ev := range got {
			if ev.rev != from+int64(j) {
				t.Fatalf("watcher %d: event %d at revision %d, want %d (gap or duplicate)", i, j, ev.rev, from+int64(j))
			}
		}
		if i == 0 {
			first = got
		} else if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Fatalf("watcher %d saw a different sequence", i)
		}
	}
}

func TestWatchPrevKVAndFilters(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	r, _ := cli.Put(ctx(t), "f/a", "1")
	from := r.Header.Revision
	cli.Put(ctx(t), "f/a", "2")
	cli.Delete(ctx(t), "f/a")
	got := collect(t, cli.Watch(ctx(t), "f/a", clientv3.WithRev(from), clientv3.WithPrevKV()), 3)
	want := []seenEvent{{mvccpb.Event_PUT, "f/a", "1", from, ""}, {mvccpb.Event_PUT, "f/a", "2", from + 1, "1"}, {mvccpb.Event_DELETE, "f/a", "", from + 2, "2"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("prev_kv: got %v, want %v", got, want)
	}
	got = collect(t, cli.Watch(ctx(t), "f/a", clientv3.WithRev(from), clientv3.WithFilterPut()), 1)
	if got[0].typ != mvccpb.Event_DELETE || got[0].rev != from+2 {
		t.Fatalf("NOPUT: %v", got)
	}
	wch := cli.Watch(ctx(t), "f/a", clientv3.WithRev(from), clientv3.WithFilterDelete())
	cli.Put(ctx(t), "f/a", "3")
	got = collect(t, wch, 3)
	if got[0].rev != from || got[1].rev != from+1 || got[2].rev != from+3 {
		t.Fatalf("NODELETE: %v", got)
	}
}

func TestWatchCompactedStartRevision(t *testing.T) {
	c := newCluster(t, 3, nil)
	// One endpoint: a physical Compact returns once the member that served it
	// has compacted, and a watch is served from local state (as in etcd), so
	// a round-robin client could open the watch on a member that has not yet
	// applied the compaction and (correctly) get the history.
	cli := c.client(0)
	var last int64
	for i := 0; i < 3; i++ {
		r, _ := cli.Put(ctx(t), "cp/k", fmt.Sprint(i))
		last = r.Header.Revision
	}
	if _, err := cli.Compact(ctx(t), last, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	wch := cli.Watch(ctx(t), "cp/k", clientv3.WithRev(last-1))
	select {
	case wr := <-wch:
		if !wr.Canceled || wr.CompactRevision != last || wr.Err() != rpctypes.ErrCompacted {
			t.Fatalf("got %+v (err %v), want canceled with compact revision %d", wr, wr.Err(), last)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no response")
	}
}

// A watch on member A resumes on B when A stops, with no gap or duplicate.
func TestWatchResumesAfterMemberStop(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	a := (lead + 1) % 3
	b := (lead + 2) % 3
	// The watch stream starts on A for certain: A is the client's only
	// endpoint. Then B becomes available and A stops, so clientv3 must
	// resume the watch on B from the last revision it saw + 1.
	wcli := c.client(a)
	pcli := c.client(lead)
	r, err := pcli.Get(ctx(t), "x")
	if err != nil {
		t.Fatal(err)
	}
	from := r.Header.Revision + 1
	wch := wcli.Watch(clientv3.WithRequireLeader(ctx(t)), "r/", clientv3.WithPrefix(), clientv3.WithRev(from))
	for i := 0; i < 10; i++ {
		if _, err := pcli.Put(ctx(t), "r/k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, wch, 10)
	wcli.SetEndpoints(c.endpoint(a), c.endpoint(b))
	c.stop(a)
	for i := 10; i < 20; i++ {
		if _, err := pcli.Put(ctx(t), "r/k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	got = append(got, collect(t, wch, 10)...)
	for j, ev := range got {
		if ev.rev != from+int64(j) || ev.val != fmt.Sprint(j) {
			t.Fatalf("event %d: %v, want revision %d value %d", j, ev, from+int64(j), j)
		}
	}
}

func TestWatchRequestProgress(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client(0)
	ctx := ctx(t)
	wch := cli.Watch(ctx, "p/", clientv3.WithPrefix())
	r, _ := cli.Put(ctx, "p/a", "1")
	collect(t, wch, 1)
	if err := cli.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case wr := <-wch:
		if !wr.IsProgressNotify() || wr.Header.Revision < r.Header.Revision {
			t.Fatalf("got %+v, want progress notify at >= %d", wr, r.Header.Revision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no progress notification")
	}
}

// Stopping the leader neither loses nor duplicates events of a watch on a
// follower.
func TestWatchAcrossLeaderChange(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	f := (lead + 1) % 3
	other := (lead + 2) % 3
	wch := c.client(f).Watch(ctx(t), "l/", clientv3.WithPrefix())
	wcli := c.client(f, other)
	n := 0
	for ; n < 10; n++ {
		if _, err := wcli.Put(ctx(t), "l/k", fmt.Sprint(n)); err != nil {
			t.Fatal(err)
		}
	}
	c.stop(lead)
	for ; n < 20; n++ {
		for {
			_, err := wcli.Put(ctx(t), "l/k", fmt.Sprint(n))
			if err == nil {
				break
			}
			// A put failing during the election may still have been
			// applied; check before retrying.
			g, gerr := wcli.Get(ctx(t), "l/k")
			if gerr == nil && len(g.Kvs) == 1 && string(g.Kvs[0].Value) == fmt.Sprint(n) {
				break
			}
		}
	}
	got := collect(t, wch, 20)
	for j := range got {
		if got[j].val != fmt.Sprint(j) || (j > 0 && got[j].rev != got[j-1].rev+1) {
			t.Fatalf("events %v", got)
		}
	}
}

// A watch opened WithRequireLeader ends with "etcdserver: no leader" once
// its member has been without a leader for the grace period.
func TestWatchRequireLeaderEndsWithoutLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	w := (lead + 1) % 3
	cli := c.client(w)
	wch := cli.Watch(clientv3.WithRequireLeader(ctx(t)), "nl/", clientv3.WithPrefix())
	if _, err := c.client(lead).Put(ctx(t), "nl/a", "1"); err != nil {
		t.Fatal(err)
	}
	collect(t, wch, 1)
	for i := range c.members {
		if i != w {
			c.stop(i)
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case wr, ok := <-wch:
			if !ok {
				t.Fatal("watch channel closed without reporting no leader")
			}
			if err := wr.Err(); err != nil {
				if !errors.Is(err, rpctypes.ErrNoLeader) {
					t.Fatalf("watch ended with %v, want %v", err, rpctypes.ErrNoLeader)
				}
				return
			}
		case <-deadline:
			t.Fatal("watch on a leaderless member was not cancelled")
		}
	}
}
