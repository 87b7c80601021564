package healthcheck

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/synod-db/synod/catalog"
)

func TestOwnedTakeover(t *testing.T) {
	agents := []string{"m0", "m1", "m2"}
	for _, self := range agents {
		if got := Owned(self, agents, agents); !reflect.DeepEqual(got, []string{self}) {
			t.Fatalf("all alive: %s owns %v, want only its own node", self, got)
		}
	}
	// m1 is dead: exactly one survivor takes it, and both agree which.
	live := []string{"m0", "m2"}
	owners := 0
	for _, self := range live {
		for _, n := range Owned(self, agents, live) {
			if n == "m1" {
				owners++
			}
		}
	}
	if owners != 1 {
		t.Fatalf("m1's checks are run by %d survivors, want 1", owners)
	}
	// Orphans spread: with many dead nodes, both survivors take some.
	var many []string
	for i := 0; i < 40; i++ {
		many = append(many, string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	a, b := Owned("m0", many, live), Owned("m2", many, live)
	if len(a)+len(b) != len(many)+2 || len(a) < 5 || len(b) < 5 {
		t.Fatalf("40 orphans split %d/%d (each list has its own node too)", len(a)-1, len(b)-1)
	}
	// A member not yet seen as live still counts itself.
	if got := Owned("m9", []string{"m0"}, nil); !reflect.DeepEqual(got, []string{"m9", "m0"}) {
		t.Fatalf("alone: %v, want its own node and the orphan", got)
	}
}

func TestSerfUpdates(t *testing.T) {
	serf := map[string]Result{
		"m0": {Status: catalog.StatusCritical, Output: SerfFailedOutput}, // back after a takeover
		"m1": {Status: catalog.StatusPassing, Output: SerfAliveOutput},   // just died
	}
	got := SerfUpdates("m0", []string{"m0", "m1", "m9"}, serf)
	want := []Update{
		{Key: Key{Node: "m0", CheckID: catalog.SerfCheckID}, Result: Result{Status: catalog.StatusPassing, Output: SerfAliveOutput}},
		{Key: Key{Node: "m1", CheckID: catalog.SerfCheckID}, Result: Result{Status: catalog.StatusCritical, Output: SerfFailedOutput}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SerfUpdates = %+v, want %+v", got, want)
	}
	settled := map[string]Result{"m0": want[0].Result, "m1": want[1].Result}
	if got := SerfUpdates("m0", []string{"m0", "m1"}, settled); len(got) != 0 {
		t.Fatalf("nothing changed, yet %+v", got)
	}
}

func TestTakeoversSettleAfterGrace(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tk := NewTakeovers(5 * time.Second)
	settled, next := tk.Observe("m0", []string{"m0", "m1"}, t0)
	if !reflect.DeepEqual(settled, []string{"m0"}) || !next.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("just taken over: settled %v next %v, want only its own node until %v", settled, next, t0.Add(5*time.Second))
	}
	// Handed back within the grace (the flap at a cluster's start): nothing
	// is pending, and a second takeover starts a fresh grace.
	if settled, next = tk.Observe("m0", []string{"m0"}, t0.Add(time.Second)); !next.IsZero() {
		t.Fatalf("handed back: next %v, want none", next)
	}
	t1 := t0.Add(3 * time.Second)
	tk.Observe("m0", []string{"m0", "m1"}, t1)
	if settled, _ = tk.Observe("m0", []string{"m0", "m1"}, t0.Add(6*time.Second)); slices.Contains(settled, "m1") {
		t.Fatalf("the grace counted from the first takeover, not the second: %v", settled)
	}
	settled, next = tk.Observe("m0", []string{"m0", "m1", "m2"}, t1.Add(5*time.Second))
	if !reflect.DeepEqual(settled, []string{"m0", "m1"}) || !next.Equal(t1.Add(10*time.Second)) {
		t.Fatalf("held for the grace: settled %v next %v", settled, next)
	}
}
