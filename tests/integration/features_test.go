package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/server"
)

// TestKVFeatures drives every KV feature through clientv3 on a real
// 3-member cluster, alternating the member each request goes to.
func TestKVFeatures(t *testing.T) {
	c := newCluster(t, 3, func(cfg *server.Config) { cfg.MaxTxnOps = 4; cfg.MaxRequestBytes = 4096 })
	clis := []*clientv3.Client{c.client(0), c.client(1), c.client(2)}
	cli := func(i int) *clientv3.Client { return clis[i%3] }
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		if _, err := cli(i).Put(ctx(t), "f/"+k, strings.Repeat(k, 5-i)); err != nil {
			t.Fatal(err)
		}
	} // revisions 2..6

	t.Run("range", func(t *testing.T) {
		g, err := cli(0).Get(ctx(t), "f/", clientv3.WithPrefix(), clientv3.WithLimit(2))
		if err != nil || len(g.Kvs) != 2 || !g.More || g.Count != 5 {
			t.Fatalf("limit: %v %v", g, err)
		}
		g, err = cli(1).Get(ctx(t), "f/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend))
		if err != nil || string(g.Kvs[0].Key) != "f/e" || string(g.Kvs[4].Key) != "f/a" {
			t.Fatalf("sort by value: %v %v", g, err)
		}
		g, err = cli(2).Get(ctx(t), "f/c", clientv3.WithFromKey(), clientv3.WithKeysOnly())
		if err != nil || len(g.Kvs) != 3 || g.Kvs[0].Value != nil {
			t.Fatalf("from key, keys only: %v %v", g, err)
		}
		g, err = cli(0).Get(ctx(t), "f/", clientv3.WithPrefix(), clientv3.WithRev(4))
		if err != nil || len(g.Kvs) != 3 || g.Header.Revision != 6 {
			t.Fatalf("historical: %v %v", g, err)
		}
		g, err = cli(1).Get(ctx(t), "f/", clientv3.WithPrefix(), clientv3.WithMinModRev(4), clientv3.WithMaxModRev(5))
		if err != nil || len(g.Kvs) != 2 || g.Count != 5 {
			t.Fatalf("mod revision filters: %v %v", g, err)
		}
		g, err = cli(2).Get(ctx(t), "f/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
		if err != nil || g.Count != 5 || len(g.Kvs) != 0 {
			t.Fatalf("count only: %v %v", g, err)
		}
		if _, err := cli(0).Get(ctx(t), "f/a", clientv3.WithRev(1000)); !errors.Is(err, rpctypes.ErrFutureRev) {
			t.Fatalf("future revision: %v", err)
		}
	})

	t.Run("put-and-delete", func(t *testing.T) {
		p, err := cli(1).Put(ctx(t), "f/a", "new", clientv3.WithPrevKV())
		if err != nil || string(p.PrevKv.Value) != "aaaaa" || p.Header.Revision != 7 {
			t.Fatalf("prev kv: %v %v", p, err)
		}
		if _, err := cli(2).Put(ctx(t), "f/a", "", clientv3.WithIgnoreValue()); err != nil {
			t.Fatalf("ignore value: %v", err)
		}
		if _, err := cli(0).Put(ctx(t), "nope", "", clientv3.WithIgnoreValue()); !errors.Is(err, rpctypes.ErrKeyNotFound) {
			t.Fatalf("ignore value on a missing key: %v", err)
		}
		if _, err := cli(1).Put(ctx(t), "x", "y", clientv3.WithLease(123)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Fatalf("unknown lease: %v", err)
		}
		if _, err := cli(2).Put(ctx(t), "", "y"); !errors.Is(err, rpctypes.ErrEmptyKey) {
			t.Fatalf("empty key: %v", err)
		}
		if _, err := cli(0).Put(ctx(t), "big", strings.Repeat("x", 5000)); !errors.Is(err, rpctypes.ErrRequestTooLarge) {
			t.Fatalf("too large: %v", err)
		}
		d, err := cli(1).Delete(ctx(t), "f/d", clientv3.WithRange("f/f"), clientv3.WithPrevKV())
		if err != nil || d.Deleted != 2 || len(d.PrevKvs) != 2 || d.Header.Revision != 9 {
			t.Fatalf("delete range: %v %v", d, err)
		}
		// Rejected requests changed nothing: the revision is where the
		// delete left it.
		g, err := cli(2).Get(ctx(t), "f/a")
		if err != nil || g.Header.Revision != 9 || g.Kvs[0].Version != 3 || string(g.Kvs[0].Value) != "new" {
			t.Fatalf("after rejected requests: %v %v", g, err)
		}
	})

	t.Run("txn", func(t *testing.T) {
		r, err := cli(0).Txn(ctx(t)).
			If(clientv3.Compare(clientv3.Value("f/a"), "=", "new"), clientv3.Compare(clientv3.Version("f/zz"), "=", 0)).
			Then(clientv3.OpPut("f/zz", "1"), clientv3.OpGet("f/zz"), clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpGet("f/a")}, nil)).
			Else(clientv3.OpPut("f/else", "1")).Commit()
		if err != nil || !r.Succeeded || r.Header.Revision != 10 {
			t.Fatalf("txn: %v %v", r, err)
		}
		if got := r.Responses[1].GetResponseRange().Kvs; len(got) != 1 || string(got[0].Value) != "1" {
			t.Fatalf("a txn reads its own writes: %v", got)
		}
		r, err = cli(1).Txn(ctx(t)).If(clientv3.Compare(clientv3.ModRevision("f/zz"), "<", 10)).
			Then(clientv3.OpDelete("f/zz")).Else(clientv3.OpGet("f/zz")).Commit()
		if err != nil || r.Succeeded || r.Header.Revision != 10 {
			t.Fatalf("failed compare: %v %v", r, err)
		}
		_, err = cli(2).Txn(ctx(t)).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
		if !errors.Is(err, rpctypes.ErrDuplicateKey) {
			t.Fatalf("duplicate key: %v", err)
		}
		var ops []clientv3.Op
		for i := 0; i < 5; i++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprint("m", i), "v"))
		}
		if _, err := cli(0).Txn(ctx(t)).Then(ops...).Commit(); !errors.Is(err, rpctypes.ErrTooManyOps) {
			t.Fatalf("too many ops: %v", err)
		}
	})

	t.Run("compact", func(t *testing.T) {
		if _, err := cli(1).Compact(ctx(t), 8, clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
		if _, err := cli(2).Get(ctx(t), "f/a", clientv3.WithRev(7)); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Fatalf("read below compaction: %v", err)
		}
		if g, err := cli(0).Get(ctx(t), "f/a", clientv3.WithRev(8)); err != nil || string(g.Kvs[0].Value) != "new" {
			t.Fatalf("read at compaction revision: %v %v", g, err)
		}
		if _, err := cli(1).Compact(ctx(t), 5); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Fatalf("compact below: %v", err)
		}
		if _, err := cli(2).Compact(ctx(t), 1000); !errors.Is(err, rpctypes.ErrFutureRev) {
			t.Fatalf("compact future: %v", err)
		}
	})

	// Every member holds the same state.
	var hashes []uint32
	for _, m := range c.members {
		rev := m.Store().Rev()
		h, _, _, err := m.Store().HashKV(10)
		if err != nil || rev != 10 {
			t.Fatalf("member at revision %d: %v", rev, err)
		}
		hashes = append(hashes, h)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Fatalf("members disagree: %v", hashes)
	}
}
