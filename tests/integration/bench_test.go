package integration

import (
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// BenchmarkRange measures linearizable and serializable single-key reads
// from 100 concurrent clients spread over a 3-member in-process cluster.
// Speed is reported by benchmarks only; no test asserts a time.
func BenchmarkRange(b *testing.B) {
	for _, mode := range []string{"linearizable", "serializable"} {
		b.Run(mode, func(b *testing.B) { benchRange(b, mode == "serializable") })
	}
}

func benchRange(b *testing.B, serializable bool) {
	c := newCluster(b, 3, nil)
	clis := []*clientv3.Client{c.client(0), c.client(1), c.client(2)}
	if _, err := clis[0].Put(ctx(b), "foo", "bar"); err != nil {
		b.Fatal(err)
	}
	var opts []clientv3.OpOption
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	const workers = 100
	work := make(chan struct{}, b.N)
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(cl *clientv3.Client) {
			defer wg.Done()
			for range work {
				if _, err := cl.Get(ctx(b), "foo", opts...); err != nil {
					b.Error(err)
					return
				}
			}
		}(clis[w%3])
	}
	wg.Wait()
}
