package simulation

import (
	"math/rand/v2"
	"testing"
)

// TestPartitionKinds checks each kind's shape over many draws: who can
// reach whom, directly, in each direction.
func TestPartitionKinds(t *testing.T) {
	ids := []uint64{1, 2, 3, 4, 5}
	tests := []struct {
		name  string
		kind  func([]uint64, *rand.Rand) partition
		check func(t *testing.T, cut map[link]bool)
	}{
		{"halves cut both ways between two non-empty groups", halves, func(t *testing.T, cut map[link]bool) {
			symmetric(t, cut)
			groups := components(ids, cut)
			if len(groups) != 2 {
				t.Fatalf("%d groups, want 2", len(groups))
			}
		}},
		{"isolate cuts exactly one member both ways", isolateOne, func(t *testing.T, cut map[link]bool) {
			symmetric(t, cut)
			if len(cut) != 2*(len(ids)-1) {
				t.Fatalf("%d cut links, want %d", len(cut), 2*(len(ids)-1))
			}
		}},
		{"one-way cuts one direction of one member's links", oneWay, func(t *testing.T, cut map[link]bool) {
			if len(cut) != len(ids)-1 {
				t.Fatalf("%d cut links, want %d", len(cut), len(ids)-1)
			}
			for l := range cut {
				if cut[link{l.to, l.from}] {
					t.Fatalf("link %v cut both ways", l)
				}
			}
		}},
		{"bridge: one member reaches everyone, the rest split in two", bridge, func(t *testing.T, cut map[link]bool) {
			symmetric(t, cut)
			var bridges int
			for _, x := range ids {
				free := true
				for _, y := range ids {
					if cut[link{x, y}] {
						free = false
					}
				}
				if free {
					bridges++
				}
			}
			if bridges != 1 {
				t.Fatalf("%d members talk to everyone, want exactly the bridge", bridges)
			}
			if len(components(ids, cut)) != 1 {
				t.Fatal("the bridge does not connect the two sides")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < 200; i++ {
				p := tc.kind(ids, rng)
				cut := map[link]bool{}
				for _, l := range p.cut {
					if l.from == l.to {
						t.Fatalf("%s cuts a member from itself", p.name)
					}
					cut[l] = true
				}
				tc.check(t, cut)
			}
		})
	}
}

// symmetric fails unless every cut link is cut both ways.
func symmetric(t *testing.T, cut map[link]bool) {
	t.Helper()
	for l := range cut {
		if !cut[link{l.to, l.from}] {
			t.Fatalf("link %v cut one way only", l)
		}
	}
}

// components groups ids by two-way reachability over uncut links.
func components(ids []uint64, cut map[link]bool) [][]uint64 {
	seen := map[uint64]bool{}
	var out [][]uint64
	for _, start := range ids {
		if seen[start] {
			continue
		}
		group, queue := []uint64{}, []uint64{start}
		seen[start] = true
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			group = append(group, x)
			for _, y := range ids {
				if !seen[y] && !cut[link{x, y}] && !cut[link{y, x}] {
					seen[y] = true
					queue = append(queue, y)
				}
			}
		}
		out = append(out, group)
	}
	return out
}
