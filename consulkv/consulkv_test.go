package consulkv

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// view builds a view at revision 10 holding entries.
func view(entries ...*Entry) *View {
	v := NewView(10)
	for _, e := range entries {
		v.AddKey(e.Key, e, e.Session != "" || e.Flags != 0 || e.LockIndex != 0)
	}
	return v
}

// writesOf is a plan's writes by key, without the KV index key every
// plan that writes puts.
func writesOf(p Plan) map[string]string {
	out := map[string]string{}
	for _, w := range p.Writes {
		if w.Key == IndexKey {
			continue
		}
		if w.Delete {
			out[w.Key] = "<delete>"
		} else {
			out[w.Key] = string(w.Value)
		}
	}
	return out
}

func TestCASAndSet(t *testing.T) {
	v := view(&Entry{Key: "a", Value: []byte("1"), CreateIndex: 3, ModifyIndex: 5})
	v.AddKey("b", nil, false)
	if _, err := v.Apply(Op{Verb: VerbCAS, Key: "a", Index: 4, Value: []byte("x")}); !errors.Is(err, ErrFailed) ||
		err.Error() != `failed to set key "a", index is stale` {
		t.Fatalf("stale cas: %v", err)
	}
	if _, err := v.Apply(Op{Verb: VerbCAS, Key: "b", Index: 0, Value: []byte("new")}); err != nil {
		t.Fatalf("cas 0 on an absent key: %v", err)
	}
	if _, err := v.Apply(Op{Verb: VerbCAS, Key: "b", Index: 0}); err == nil {
		t.Fatal("cas 0 on a key created earlier in the txn succeeded")
	}
	res, err := v.Apply(Op{Verb: VerbCAS, Key: "a", Index: 5, Value: []byte("2"), Flags: 1<<64 - 1})
	if err != nil || len(res) != 1 || res[0].Value != nil {
		t.Fatalf("cas at the right index: %v %v", res, err)
	}
	p := v.Plan(100)
	want := map[string]string{ValueKey("a"): "2", MetaKey("a"): `{"Flags":18446744073709551615}`, ValueKey("b"): "new"}
	if got := writesOf(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("writes = %v, want %v", got, want)
	}
	wantCmp := []Compare{{Key: ValueKey("a"), Op: "=", Rev: 5}, {Key: ValueKey("b"), Op: "=", Rev: 0}}
	if !reflect.DeepEqual(p.Compares, wantCmp) {
		t.Fatalf("compares = %+v, want %+v", p.Compares, wantCmp)
	}
	Finish(42, res)
	if res[0].ModifyIndex != 42 || res[0].CreateIndex != 3 {
		t.Fatalf("after commit at 42: %+v", res[0])
	}
}

func TestSetSameWritesNothing(t *testing.T) {
	v := view(&Entry{Key: "a", Value: []byte("1"), Flags: 7, ModifyIndex: 5})
	if _, err := v.Apply(Op{Verb: VerbSet, Key: "a", Value: []byte("1"), Flags: 7}); err != nil {
		t.Fatal(err)
	}
	if p := v.Plan(1); !p.Empty() {
		t.Fatalf("an unchanged set writes %v", p.Writes)
	}
	v.Apply(Op{Verb: VerbDelete, Key: "a"})
	if p := v.Plan(1); p.Writes[0].Key != IndexKey && p.Writes[len(p.Writes)-1].Key != IndexKey {
		t.Fatalf("a delete's plan does not put the KV index: %v", p.Writes)
	}
}

func TestLockUnlock(t *testing.T) {
	v := view(&Entry{Key: "l", Value: []byte("v"), LockIndex: 2, ModifyIndex: 5})
	v.AddSession("s1", 8)
	v.AddSession("dead", 0)
	v.AddDelay("l", false)
	if _, err := v.Apply(Op{Verb: VerbLock, Key: "l", Session: "dead"}); !errors.Is(err, ErrInvalid) || err.Error() != `invalid session "dead"` {
		t.Fatalf("lock by a dead session: %v", err)
	}
	if _, err := v.Apply(Op{Verb: VerbLock, Key: "l", Session: "s1", Value: []byte("mine")}); err != nil {
		t.Fatal(err)
	}
	if e := v.Entry("l"); e.Session != "s1" || e.LockIndex != 3 {
		t.Fatalf("after lock: %+v", e)
	}
	v.AddSession("s2", 9)
	if _, err := v.Apply(Op{Verb: VerbLock, Key: "l", Session: "s2"}); !errors.Is(err, ErrFailed) {
		t.Fatalf("lock held by s1 taken by s2: %v", err)
	}
	p := v.Plan(1)
	if got := writesOf(p); got[LockKey("s1", "l")] != "" || got[MetaKey("l")] != `{"Session":"s1","LockIndex":3}` {
		t.Fatalf("lock writes = %v", got)
	}
	hasCmp := func(c Compare) bool {
		for _, x := range p.Compares {
			if x == c {
				return true
			}
		}
		return false
	}
	if !hasCmp(Compare{Key: SessionKey("s1"), Create: true, Op: "=", Rev: 8}) || !hasCmp(Compare{Key: DelayKey("l"), Create: true, Op: "=", Rev: 0}) {
		t.Fatalf("lock compares = %+v: want the session alive and no lock delay", p.Compares)
	}
	if _, err := v.Apply(Op{Verb: VerbUnlock, Key: "l", Session: "s2"}); !errors.Is(err, ErrFailed) {
		t.Fatalf("unlock by a non-holder: %v", err)
	}
	if _, err := v.Apply(Op{Verb: VerbUnlock, Key: "l", Session: "s1"}); err != nil {
		t.Fatal(err)
	}
	if e := v.Entry("l"); e.Session != "" || e.LockIndex != 3 {
		t.Fatalf("after unlock: %+v", e)
	}
}

func TestLockDelay(t *testing.T) {
	v := view(&Entry{Key: "l", ModifyIndex: 5, LockIndex: 1})
	v.AddSession("s1", 8)
	v.AddDelay("l", true)
	if _, err := v.Apply(Op{Verb: VerbLock, Key: "l", Session: "s1"}); !errors.Is(err, ErrFailed) {
		t.Fatalf("lock under a lock delay: %v", err)
	}
}

func TestInvalidate(t *testing.T) {
	held := func() *View {
		v := view(&Entry{Key: "l", Value: []byte("v"), Session: "s1", LockIndex: 4, ModifyIndex: 5},
			&Entry{Key: "other", Value: []byte("o"), Session: "s2", LockIndex: 1, ModifyIndex: 6})
		v.Invalidate("s1", "l", false)
		v.Invalidate("s1", "other", false)
		return v
	}
	got := writesOf(held().Plan(1))
	want := map[string]string{ValueKey("l"): "v", MetaKey("l"): `{"LockIndex":4}`, LockKey("s1", "l"): "<delete>",
		LockKey("s1", "other"): "<delete>"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("release writes = %v, want %v", got, want)
	}
	p := held().Plan(1)
	if last := p.Compares[len(p.Compares)-1]; last != (Compare{Key: SessionKey("s1"), Create: true, Op: "=", Rev: 0}) {
		t.Fatalf("invalidation does not require the session dead: %+v", p.Compares)
	}
	v := view(&Entry{Key: "l", Value: []byte("v"), Session: "s1", LockIndex: 4, ModifyIndex: 5})
	v.Invalidate("s1", "l", true)
	got = writesOf(v.Plan(77))
	want = map[string]string{ValueKey("l"): "<delete>", MetaKey("l"): "<delete>", TombKey("l"): "77", LockKey("s1", "l"): "<delete>"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("delete-behavior writes = %v, want %v", got, want)
	}
}

func TestTreeAndChecks(t *testing.T) {
	v := view(&Entry{Key: "t/a", ModifyIndex: 3}, &Entry{Key: "t/b", ModifyIndex: 4}, &Entry{Key: "u", ModifyIndex: 2})
	v.AddTree("t/")
	res, err := v.Apply(Op{Verb: VerbGetTree, Key: "t/"})
	if err != nil || len(res) != 2 || res[0].Key != "t/a" || res[1].Key != "t/b" {
		t.Fatalf("get-tree: %v %v", res, err)
	}
	if _, err := v.Apply(Op{Verb: VerbCheckIndex, Key: "u", Index: 3}); err == nil ||
		err.Error() != `failed index check for key "u", current modify index 2 != 3` {
		t.Fatalf("check-index: %v", err)
	}
	if _, err := v.Apply(Op{Verb: VerbCheckNotExists, Key: "u"}); err == nil || err.Error() != `key "u" exists` {
		t.Fatalf("check-not-exists: %v", err)
	}
	v.Apply(Op{Verb: VerbDeleteTree, Key: "t/"})
	got := writesOf(v.Plan(9))
	want := map[string]string{ValueKey("t/a"): "<delete>", ValueKey("t/b"): "<delete>", TombKey("t/a"): "9", TombKey("t/b"): "9", TombKey("t/"): "9"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("delete-tree writes = %v, want %v", got, want)
	}
	if _, err := v.Apply(Op{Verb: "frobnicate", Key: "u"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown verb: %v", err)
	}
}

func TestDeleteCAS(t *testing.T) {
	v := view(&Entry{Key: "a", ModifyIndex: 5})
	v.AddKey("gone", nil, false)
	if _, err := v.Apply(Op{Verb: VerbDeleteCAS, Key: "a", Index: 4}); err == nil {
		t.Fatal("delete-cas at a stale index succeeded")
	}
	if _, err := v.Apply(Op{Verb: VerbDeleteCAS, Key: "gone", Index: 4}); err != nil {
		t.Fatalf("delete-cas of a missing key: %v, want success as in Consul", err)
	}
}

func TestListKeys(t *testing.T) {
	keys := []string{"a/b", "a/c/d", "a/c/e", "a/f"}
	if got := ListKeys(keys, "a/", "/"); !reflect.DeepEqual(got, []string{"a/b", "a/c/", "a/f"}) {
		t.Fatalf("with separator: %v", got)
	}
	if got := ListKeys(keys, "a/", ""); !reflect.DeepEqual(got, keys) {
		t.Fatalf("without: %v", got)
	}
}

func TestParseSession(t *testing.T) {
	s, err := ParseSession([]byte(`{"name":"x","LockDelay":"5s","TTL":"30s","Behavior":"delete"}`), "n1", "serfHealth")
	if err != nil || s.Name != "x" || s.LockDelay != 5*time.Second || s.Node != "n1" || !reflect.DeepEqual(s.NodeChecks, []string{"serfHealth"}) {
		t.Fatalf("%+v %v", s, err)
	}
	s, _ = ParseSession([]byte(`{"LockDelay":15,"Checks":[]}`), "n1", "serfHealth")
	if s.LockDelay != 15*time.Second || len(s.NodeChecks) != 0 {
		t.Fatalf("numeric lock delay in seconds and no checks: %+v", s)
	}
	for body, want := range map[string]string{
		`{"TTL":"5s"}`:        "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
		`{"TTL":"x"}`:         `Session TTL 'x' invalid: time: invalid duration "x"`,
		`{"Behavior":"keep"}`: "Invalid Behavior setting 'keep'",
		`{"TTL":"25h"}`:       "Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]",
	} {
		s, err := ParseSession([]byte(body), "n1", "serfHealth")
		if err == nil {
			err = s.Validate()
		}
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
	s = &Session{NodeChecks: []string{"serfHealth"}, ServiceChecks: []ServiceCheck{{ID: "web"}}}
	if err := s.Healthy(map[string]string{"serfHealth": "passing", "web": "critical"}, "critical"); err == nil ||
		err.Error() != "Check 'web' is in critical state" {
		t.Fatalf("critical service check: %v", err)
	}
	if err := s.Healthy(nil, "critical"); err == nil || err.Error() != "Missing node registration" {
		t.Fatalf("no node: %v", err)
	}
}
