package raftnode

import (
	"sync"
	"testing"
)

// BenchmarkReadIndex measures linearizable read barriers from 100
// concurrent callers spread over a 3-member cluster on the in-memory network.
func BenchmarkReadIndex(b *testing.B) {
	c := newMemCluster(b, 3, 10000)
	c.waitLeader()
	nodes := []*Node{c.members[1].node, c.members[2].node, c.members[3].node}
	work := make(chan struct{}, b.N)
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < 100; w++ {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			for range work {
				if err := n.ReadIndex(tctx(b)); err != nil {
					b.Error(err)
					return
				}
			}
		}(nodes[w%3])
	}
	wg.Wait()
}
