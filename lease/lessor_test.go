package lease

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/record"
)

// fakeClock is a manually advanced clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func newTestLessor() (*Lessor, *fakeClock) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	return New(Config{Clock: clk.Now, RetryInterval: 3 * time.Second}), clk
}

// grant plans and commits a grant, failing the test on error.
func grant(t *testing.T, l *Lessor, id, ttl int64, index uint64) {
	t.Helper()
	c, err := l.PlanGrant(id, ttl, index)
	if err != nil {
		t.Fatalf("grant %d: %v", id, err)
	}
	l.Commit(c)
}

func checkpoint(t *testing.T, l *Lessor, index uint64, cps ...*pb.LeaseCheckpoint) (Change, error) {
	t.Helper()
	c, err := l.PlanCheckpoints(cps, index)
	l.Commit(c)
	return c, err
}

func put(key string, lease int64) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte(key), Lease: lease}}
}

func del(key string) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key)}}
}

func keys(ks ...string) [][]byte {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}

func TestPlanGrantErrors(t *testing.T) {
	l, _ := newTestLessor()
	grant(t, l, 7, 10, 1)
	for _, tc := range []struct {
		name    string
		id, ttl int64
		wantTTL int64
		err     error
	}{
		{"ok", 8, 10, 10, nil},
		{"id zero", 0, 10, 0, ErrNotFound},
		{"too large", 9, MaxTTL + 1, 0, ErrTTLTooLarge},
		{"max ttl", 9, MaxTTL, MaxTTL, nil},
		{"too large wins over exists", 7, MaxTTL + 1, 0, ErrTTLTooLarge},
		{"exists", 7, 10, 0, ErrExists},
		{"zero ttl is one second", 9, 0, 1, nil},
		{"negative ttl is one second", 9, -5, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := l.PlanGrant(tc.id, tc.ttl, 5)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && (len(c.Put) != 1 || c.Put[0] != (Record{ID: tc.id, TTL: tc.wantTTL, RenewIndex: 5})) {
				t.Fatalf("change %+v", c)
			}
		})
	}
}

func TestMinTTL(t *testing.T) {
	for _, tc := range []struct {
		hb    time.Duration
		ticks int
		want  int64
	}{
		{100 * time.Millisecond, 10, 2}, // etcd's defaults: 1.5 s rounds up to 2
		{10 * time.Millisecond, 10, 1},
		{time.Second, 10, 15},
		{100 * time.Millisecond, 11, 2}, // (3*11)/2 = 16 ticks = 1.6 s
		{500 * time.Millisecond, 5, 4},  // 7 ticks = 3.5 s
	} {
		if got := MinTTL(tc.hb, tc.ticks); got != tc.want {
			t.Errorf("MinTTL(%v, %d) = %d, want %d", tc.hb, tc.ticks, got, tc.want)
		}
	}
}

func TestExpiryOrderAndRetry(t *testing.T) {
	l, clk := newTestLessor()
	grant(t, l, 1, 30, 1)
	grant(t, l, 2, 10, 2)
	grant(t, l, 3, 20, 3)
	steps := []struct {
		advance time.Duration
		max     int
		want    []Expiry
	}{
		{9 * time.Second, 10, nil},
		{time.Second, 10, []Expiry{{2, 2}}},                      // t=10: lease 2 expires exactly at its TTL
		{time.Second, 10, nil},                                   // reported once; the retry interval has not passed
		{10 * time.Second, 1, []Expiry{{2, 2}}},                  // t=21: 2 again (retry), bounded to one
		{0, 10, []Expiry{{3, 3}}},                                // then 3
		{10 * time.Second, 10, []Expiry{{2, 2}, {3, 3}, {1, 1}}}, // t=31: all, earliest check first (2 and 3 at 24, 1 at 30)
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if got := l.Expired(s.max); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: Expired = %v, want %v", i, got, s.want)
		}
	}
}

func TestRenewalRestartsTTLAndCancelsStaleExpiry(t *testing.T) {
	l, clk := newTestLessor()
	grant(t, l, 1, 10, 4)
	clk.Advance(9 * time.Second)
	if st, _ := l.Lookup(1, false); st.RemainingSeconds() != 1 {
		t.Fatalf("remaining %v", st.Remaining)
	}
	clk.Advance(2 * time.Second) // t=11: expired locally
	exp := l.Expired(10)
	if !reflect.DeepEqual(exp, []Expiry{{1, 4}}) {
		t.Fatalf("expired %v", exp)
	}
	// A renewal is applied (index 9) before the leader's expiry (index 10).
	if _, err := checkpoint(t, l, 9, &pb.LeaseCheckpoint{ID: 1, Remaining_TTL: 10}); err != nil {
		t.Fatal(err)
	}
	if st, _ := l.Lookup(1, false); st.Remaining != 10*time.Second {
		t.Fatalf("after renewal remaining %v", st.Remaining)
	}
	c, err := checkpoint(t, l, 10, &pb.LeaseCheckpoint{ID: 1, Remaining_TTL: -int64(exp[0].RenewIndex)})
	if err != nil || len(c.Remove) != 0 || !l.Exists(1) {
		t.Fatalf("stale expiry removed the renewed lease: %+v %v", c, err)
	}
	// Nothing is reported until the renewed TTL passes.
	clk.Advance(9 * time.Second)
	if got := l.Expired(10); got != nil {
		t.Fatalf("expired early: %v", got)
	}
	clk.Advance(time.Second)
	exp = l.Expired(10)
	if !reflect.DeepEqual(exp, []Expiry{{1, 9}}) {
		t.Fatalf("expired %v", exp)
	}
	c, err = checkpoint(t, l, 11, &pb.LeaseCheckpoint{ID: 1, Remaining_TTL: -9})
	if err != nil || !reflect.DeepEqual(c.Remove, []int64{1}) || l.Exists(1) {
		t.Fatalf("current expiry did not remove: %+v %v", c, err)
	}
}

func TestPlanCheckpoints(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cps        []*pb.LeaseCheckpoint
		wantPut    []Record
		wantRemove []int64
		wantKeys   [][]byte
		err        error
		missing    []int64
	}{
		{"renew", []*pb.LeaseCheckpoint{{ID: 1, Remaining_TTL: 3}}, []Record{{1, 10, 50}}, nil, nil, nil, nil},
		{"renew missing", []*pb.LeaseCheckpoint{{ID: 9, Remaining_TTL: 3}, {ID: 2, Remaining_TTL: 20}},
			[]Record{{2, 20, 50}}, nil, nil, ErrNotFound, []int64{9}},
		{"renew several missing", []*pb.LeaseCheckpoint{{ID: 9, Remaining_TTL: 3}, {ID: 1, Remaining_TTL: 10}, {ID: 8, Remaining_TTL: 3}},
			[]Record{{1, 10, 50}}, nil, nil, ErrNotFound, []int64{9, 8}},
		{"expire current", []*pb.LeaseCheckpoint{{ID: 1, Remaining_TTL: -11}, {ID: 2, Remaining_TTL: -12}},
			nil, []int64{1, 2}, keys("a", "b", "c"), nil, nil},
		{"expire stale", []*pb.LeaseCheckpoint{{ID: 1, Remaining_TTL: -5}}, nil, nil, nil, nil, nil},
		{"expire missing", []*pb.LeaseCheckpoint{{ID: 9, Remaining_TTL: -5}}, nil, nil, nil, nil, nil},
		{"renew then stale expiry", []*pb.LeaseCheckpoint{{ID: 1, Remaining_TTL: 1}, {ID: 1, Remaining_TTL: -11}},
			[]Record{{1, 10, 50}}, nil, nil, nil, nil},
		{"expire then renew", []*pb.LeaseCheckpoint{{ID: 1, Remaining_TTL: -11}, {ID: 1, Remaining_TTL: 1}},
			nil, []int64{1}, keys("b", "c"), ErrNotFound, []int64{1}},
		{"zero does nothing", []*pb.LeaseCheckpoint{{ID: 1, Remaining_TTL: 0}}, nil, nil, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLessor()
			grant(t, l, 1, 10, 11)
			grant(t, l, 2, 20, 12)
			l.ApplyEvents([]*mvccpb.Event{put("c", 1), put("a", 2), put("b", 1)})
			c, err := l.PlanCheckpoints(tc.cps, 50)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			var me *MissingError
			if errors.As(err, &me) != (tc.err != nil) || me != nil && !reflect.DeepEqual(me.IDs, tc.missing) {
				t.Fatalf("err %v, want the missing leases %v named", err, tc.missing)
			}
			if !reflect.DeepEqual(c.Put, tc.wantPut) || !reflect.DeepEqual(c.Remove, tc.wantRemove) ||
				!reflect.DeepEqual(c.DeleteKeys, tc.wantKeys) {
				t.Fatalf("change %+v", c)
			}
		})
	}
}

func TestAttachDetach(t *testing.T) {
	l, _ := newTestLessor()
	grant(t, l, 1, 10, 1)
	grant(t, l, 2, 10, 2)
	steps := []struct {
		evs    []*mvccpb.Event
		keys1  [][]byte
		keys2  [][]byte
		reason string
	}{
		{[]*mvccpb.Event{put("b", 1), put("a", 1)}, keys("a", "b"), keys(), "attach"},
		{[]*mvccpb.Event{put("a", 2)}, keys("b"), keys("a"), "move to another lease"},
		{[]*mvccpb.Event{put("a", 2)}, keys("b"), keys("a"), "same lease again"},
		{[]*mvccpb.Event{put("b", 0)}, keys(), keys("a"), "put without lease detaches"},
		{[]*mvccpb.Event{put("x", 99)}, keys(), keys("a"), "unknown lease ignored"},
		{[]*mvccpb.Event{del("a"), put("c", 1)}, keys("c"), keys(), "delete detaches"},
	}
	for _, s := range steps {
		l.ApplyEvents(s.evs)
		st1, _ := l.Lookup(1, true)
		st2, _ := l.Lookup(2, true)
		if !reflect.DeepEqual(st1.Keys, s.keys1) || !reflect.DeepEqual(st2.Keys, s.keys2) {
			t.Fatalf("%s: lease 1 %q, lease 2 %q", s.reason, st1.Keys, st2.Keys)
		}
	}
	c, err := l.PlanRevoke(1)
	if err != nil || !reflect.DeepEqual(c.DeleteKeys, keys("c")) {
		t.Fatalf("revoke plan %+v %v", c, err)
	}
	l.Commit(c)
	l.ApplyEvents([]*mvccpb.Event{del("c")})
	if l.Exists(1) || !reflect.DeepEqual(l.IDs(), []int64{2}) {
		t.Fatalf("after revoke: %v", l.IDs())
	}
	if st := l.Stats(); st != (Stats{Granted: 2, Revoked: 1}) {
		t.Fatalf("stats %+v", st)
	}
	if _, err := l.PlanRevoke(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	// The key now attaches to nothing; putting it with lease 2 works.
	l.ApplyEvents([]*mvccpb.Event{put("c", 2)})
	if st, _ := l.Lookup(2, true); !reflect.DeepEqual(st.Keys, keys("c")) {
		t.Fatalf("lease 2 keys %q", st.Keys)
	}
}

func TestPersistAndLoad(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, clk := newTestLessor()
	write := func(c Change) {
		b := db.NewBatch()
		if err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
		l.Commit(c)
	}
	for _, g := range []Record{{5, 10, 1}, {-3, 20, 2}, {9, 30, 3}} {
		c, err := l.PlanGrant(g.ID, g.TTL, g.RenewIndex)
		if err != nil {
			t.Fatal(err)
		}
		write(c)
	}
	clk.Advance(4 * time.Second)
	c, _ := l.PlanCheckpoints([]*pb.LeaseCheckpoint{{ID: 9, Remaining_TTL: 30}}, 7)
	write(c)
	c, _ = l.PlanRevoke(-3)
	write(c)

	recs, err := ReadRecords(db)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{{5, 10, 1}, {9, 30, 7}}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("records %+v, want %+v", recs, want)
	}

	// Restore into the same lessor: unchanged leases keep their expiry.
	clk.Advance(time.Second)
	scan := func(fn func([]byte, int64) error) error {
		for _, kv := range []struct {
			k  string
			id int64
		}{{"a", 5}, {"b", 9}, {"c", 42}} {
			if err := fn([]byte(kv.k), kv.id); err != nil {
				return err
			}
		}
		return nil
	}
	if err := l.Load(append(recs, Record{11, 8, 20}), scan); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   int64
		rem  time.Duration
		keys [][]byte
	}{
		{5, 5 * time.Second, keys("a")},  // granted at t=0, now t=5
		{9, 29 * time.Second, keys("b")}, // renewed at t=4
		{11, 8 * time.Second, keys()},    // new in the snapshot: full TTL from now
	} {
		st, ok := l.Lookup(tc.id, true)
		if !ok || st.Remaining != tc.rem || !reflect.DeepEqual(st.Keys, tc.keys) {
			t.Errorf("lease %d: %+v %v", tc.id, st, ok)
		}
	}
	// A fresh lessor (a restart) gives every lease its full TTL again.
	fresh, _ := newTestLessor()
	if err := fresh.Load(recs, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := fresh.Lookup(5, false); st.Remaining != 10*time.Second {
		t.Fatalf("after restart: %v", st.Remaining)
	}
	if got := fresh.IDs(); !reflect.DeepEqual(got, []int64{5, 9}) {
		t.Fatalf("ids %v", got)
	}
}

// encode seals r as a record is stored: TTL then renewal index, 8 bytes
// big-endian each, after the checksum of key and payload.
func encode(r Record) []byte {
	p := binary.BigEndian.AppendUint64(nil, uint64(r.TTL))
	p = binary.BigEndian.AppendUint64(p, r.RenewIndex)
	return record.Seal(nil, Key(r.ID), p)
}

// Records written in place by Change.Write are byte for byte those of the
// format data directories already hold.
func TestRecordFormat(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := []Record{{ID: 1, TTL: 5, RenewIndex: 1}, {ID: -7, TTL: 9_000_000_000, RenewIndex: 1 << 40}}
	b := db.NewBatch()
	if err := (Change{Put: recs}).Write(b); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		v, closer, err := db.Get(append([]byte{Prefix}, binary.BigEndian.AppendUint64(nil, uint64(r.ID))...))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v, encode(r)) {
			t.Errorf("record %+v stored as %x, want %x", r, v, encode(r))
		}
		_ = closer.Close()
	}
}

func TestReadRecordsCorrupt(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name string
		k, v []byte
	}{
		{"bad checksum", Key(1), append(encode(Record{ID: 1, TTL: 5, RenewIndex: 1})[:19], 0xff)},
		{"short payload", Key(2), record.Seal(nil, Key(2), []byte{1, 2, 3})},
		{"short key", []byte{Prefix, 1}, record.Seal(nil, []byte{Prefix, 1}, make([]byte, 16))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := db.Set(tc.k, tc.v, nil); err != nil {
				t.Fatal(err)
			}
			defer db.Delete(tc.k, nil)
			if _, err := ReadRecords(db); !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("err %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestRemainingSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{{9999 * time.Millisecond, 9}, {time.Second, 1}, {0, 0}, {-2 * time.Second, 0}} {
		if got := (Status{Remaining: tc.d}).RemainingSeconds(); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.d, got, tc.want)
		}
	}
}
