package simulation

import (
	"fmt"
	"math/rand/v2"
)

// partition is a set of cut links, one direction each, with a description
// for the trace.
type partition struct {
	name string
	cut  []link
}

// partitionKinds are the partitions the fault schedule draws from.
var partitionKinds = []func(ids []uint64, rng *rand.Rand) partition{
	halves, isolateOne, oneWay, bridge,
}

// cutBetween cuts every link between a and b in both directions.
func cutBetween(a, b []uint64) []link {
	var out []link
	for _, x := range a {
		for _, y := range b {
			out = append(out, link{x, y}, link{y, x})
		}
	}
	return out
}

// split shuffles ids and splits them into two non-empty groups (ids must
// have at least two members), the first of size k in [1, len-1].
func split(ids []uint64, rng *rand.Rand) (a, b []uint64) {
	s := append([]uint64(nil), ids...)
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	k := 1 + rng.IntN(len(s)-1)
	return s[:k], s[k:]
}

// halves splits the members into two random groups that cannot talk.
func halves(ids []uint64, rng *rand.Rand) partition {
	a, b := split(ids, rng)
	return partition{name: fmt.Sprintf("halves %x | %x", a, b), cut: cutBetween(a, b)}
}

// isolateOne cuts one random member off from everyone, both ways.
func isolateOne(ids []uint64, rng *rand.Rand) partition {
	x := ids[rng.IntN(len(ids))]
	return partition{name: fmt.Sprintf("isolate %x", x), cut: cutBetween([]uint64{x}, others(ids, x))}
}

// oneWay is an asymmetric partition: one member's inbound (or outbound)
// links are all cut while the other direction works.
func oneWay(ids []uint64, rng *rand.Rand) partition {
	x := ids[rng.IntN(len(ids))]
	inbound := rng.IntN(2) == 0
	var cut []link
	for _, y := range others(ids, x) {
		if inbound {
			cut = append(cut, link{y, x})
		} else {
			cut = append(cut, link{x, y})
		}
	}
	dir := "outbound"
	if inbound {
		dir = "inbound"
	}
	return partition{name: fmt.Sprintf("one-way: %x %s cut", x, dir), cut: cut}
}

// bridge splits the members other than a bridge member into two groups that
// cannot talk to each other, while the bridge talks to both. With fewer than
// three members it falls back to halves.
func bridge(ids []uint64, rng *rand.Rand) partition {
	if len(ids) < 3 {
		return halves(ids, rng)
	}
	x := ids[rng.IntN(len(ids))]
	a, b := split(others(ids, x), rng)
	return partition{name: fmt.Sprintf("bridge %x between %x | %x", x, a, b), cut: cutBetween(a, b)}
}

// others is ids without x, in order.
func others(ids []uint64, x uint64) []uint64 {
	var out []uint64
	for _, y := range ids {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}
