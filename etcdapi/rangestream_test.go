package etcdapi

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// fill puts n keys "key/000".."key/<n-1>" with 40-byte values.
func fill(t *testing.T, cli *clientv3.Client, n int) {
	t.Helper()
	ctx := testCtx(t)
	for i := range n {
		if _, err := cli.Put(ctx, fmt.Sprintf("key/%03d", i), strings.Repeat(fmt.Sprint(i%10), 40)); err != nil {
			t.Fatal(err)
		}
	}
}

// streamChunks collects the chunks of a RangeStream through the raw stub.
func streamChunks(t *testing.T, cli *clientv3.Client, r *pb.RangeRequest) ([]*pb.RangeResponse, error) {
	t.Helper()
	rs, err := pb.NewKVClient(cli.ActiveConnection()).RangeStream(testCtx(t), r)
	if err != nil {
		return nil, err
	}
	var chunks []*pb.RangeResponse
	for {
		c, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return chunks, nil
		}
		if err != nil {
			return chunks, err
		}
		chunks = append(chunks, c.RangeResponse)
	}
}

// checkChunks fails unless only the last chunk carries header, More and
// Count, and returns the chunks merged as a client merges them.
func checkChunks(t *testing.T, name string, chunks []*pb.RangeResponse) *pb.RangeResponse {
	t.Helper()
	merged := &pb.RangeResponse{}
	for i, c := range chunks {
		if i < len(chunks)-1 && (c.Header != nil || c.More || c.Count != 0) {
			t.Errorf("%s: chunk %d of %d carries header/more/count: %v %v %v", name, i, len(chunks), c.Header, c.More, c.Count)
		}
		proto.Merge(merged, c)
	}
	if len(chunks) == 0 || chunks[len(chunks)-1].Header == nil {
		t.Errorf("%s: the last chunk has no header", name)
	}
	return merged
}

func TestRangeStreamMatchesRange(t *testing.T) {
	// A small request limit makes chunks small, so that chunk sizes adapt.
	ts := serve(t, newFakeMember(t, Limits{MaxRequestBytes: 2048}), Options{})
	cli := ts.client(t)
	fill(t, cli, 120)
	kv := pb.NewKVClient(cli.ActiveConnection())
	prefix := []byte("key/")
	end := []byte("key0")
	for _, tc := range []struct {
		name      string
		r         *pb.RangeRequest
		minChunks int
	}{
		{"prefix", &pb.RangeRequest{Key: prefix, RangeEnd: end}, 4},
		{"limit over first chunk", &pb.RangeRequest{Key: prefix, RangeEnd: end, Limit: 25}, 2},
		{"limit under first chunk", &pb.RangeRequest{Key: prefix, RangeEnd: end, Limit: 3}, 1},
		{"limit of a whole chunk", &pb.RangeRequest{Key: prefix, RangeEnd: end, Limit: 10}, 1},
		{"limit above the count", &pb.RangeRequest{Key: prefix, RangeEnd: end, Limit: 500}, 4},
		{"keys only", &pb.RangeRequest{Key: prefix, RangeEnd: end, KeysOnly: true}, 3},
		{"count only", &pb.RangeRequest{Key: prefix, RangeEnd: end, CountOnly: true}, 1},
		{"serializable", &pb.RangeRequest{Key: prefix, RangeEnd: end, Serializable: true}, 4},
		{"at a revision", &pb.RangeRequest{Key: prefix, RangeEnd: end, Revision: 50}, 3},
		{"from key", &pb.RangeRequest{Key: []byte("key/100"), RangeEnd: []byte{0}}, 2},
		{"one key", &pb.RangeRequest{Key: []byte("key/007")}, 1},
		{"nothing", &pb.RangeRequest{Key: []byte("nope")}, 1},
		{"no order, other target", &pb.RangeRequest{Key: prefix, RangeEnd: end, SortTarget: pb.RangeRequest_MOD}, 4},
	} {
		want, err := kv.Range(testCtx(t), tc.r)
		if err != nil {
			t.Fatalf("%s: range: %v", tc.name, err)
		}
		chunks, err := streamChunks(t, cli, tc.r)
		if err != nil {
			t.Fatalf("%s: stream: %v", tc.name, err)
		}
		if len(chunks) < tc.minChunks {
			t.Errorf("%s: %d chunks, want at least %d", tc.name, len(chunks), tc.minChunks)
		}
		if got := checkChunks(t, tc.name, chunks); !proto.Equal(got, want) {
			t.Errorf("%s: merged stream differs from Range:\n got %v\nwant %v", tc.name, got, want)
		}
	}
}

func TestRangeStreamChunkSizes(t *testing.T) {
	if got := nextChunkLimit(10, 100, 1000); got != 20 {
		t.Errorf("small chunks double: %d", got)
	}
	if got := nextChunkLimit(10, 600, 1000); got != 10 {
		t.Errorf("chunks near the target stay: %d", got)
	}
	if got := nextChunkLimit(10, 2001, 1000); got != 5 {
		t.Errorf("big chunks halve: %d", got)
	}
	if got := nextChunkLimit(1, 5000, 1000); got != 1 {
		t.Errorf("never below one key: %d", got)
	}
}

// TestRangeStreamPinsRevision checks that writes made while a stream runs
// are not seen by its later chunks.
func TestRangeStreamPinsRevision(t *testing.T) {
	m := newFakeMember(t, Limits{})
	hooks := m.hook()
	ts := serve(t, m, Options{})
	cli := ts.client(t)
	fill(t, cli, 30)
	rev := ts.m.store.Rev()
	hooks.set(func(h *hookStore) { h.calls = 0 })
	hooks.set(func(h *hookStore) {
		h.onRange = func(calls int) {
			if calls != 2 { // between the first and the second chunk
				return
			}
			if _, err := ts.m.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("key/999"), Value: []byte("late")}}); err != nil {
				t.Error(err)
			}
		}
	})
	chunks, err := streamChunks(t, cli, &pb.RangeRequest{Key: []byte("key/"), RangeEnd: []byte("key0")})
	hooks.set(func(h *hookStore) { h.onRange = nil })
	if err != nil {
		t.Fatal(err)
	}
	got := checkChunks(t, "pinned", chunks)
	checkHeader(t, "pinned", got.Header, rev)
	if len(got.Kvs) != 30 || got.Count != 30 || got.More {
		t.Errorf("pinned stream saw %d keys, count %d, more %v; want the 30 keys before the write", len(got.Kvs), got.Count, got.More)
	}
	if ts.m.store.Rev() != rev+1 {
		t.Errorf("the concurrent write did not happen")
	}
}

func TestRangeStreamThroughClient(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	fill(t, cli, 50)

	reads := ts.m.readIndexes.Load()
	stream, err := cli.GetStream(ctx, "key/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got, err := clientv3.GetStreamToGetResponse(stream)
	if err != nil {
		t.Fatal(err)
	}
	if ts.m.readIndexes.Load() != reads+1 {
		t.Errorf("a linearizable stream waits for one read index")
	}
	want, err := cli.Get(ctx, "key/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal((*pb.RangeResponse)(got), (*pb.RangeResponse)(want)) {
		t.Errorf("GetStream differs from Get:\n got %v\nwant %v", got, want)
	}

	isStatus := func(want error) func(error) bool {
		return func(err error) bool {
			return status.Code(err) == status.Code(want) && status.Convert(err).Message() == status.Convert(want).Message()
		}
	}
	isEtcd := func(want error) func(error) bool {
		return func(err error) bool { return errors.Is(err, want) }
	}
	for _, tc := range []struct {
		name  string
		key   string
		opts  []clientv3.OpOption
		match func(error) bool
	}{
		{"descending", "key/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}, isStatus(errGRPCStreamSort)},
		{"by value", "key/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend)}, isStatus(errGRPCStreamSort)},
		{"filter", "key/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(3)}, isStatus(errGRPCStreamFilters)},
		{"future", "key/", []clientv3.OpOption{clientv3.WithRev(9999)}, isEtcd(rpctypes.ErrFutureRev)},
		{"empty key", "", nil, isEtcd(rpctypes.ErrEmptyKey)},
	} {
		stream, err := cli.GetStream(ctx, tc.key, tc.opts...)
		if err == nil {
			_, err = clientv3.GetStreamToGetResponse(stream)
		}
		if !tc.match(err) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
}
