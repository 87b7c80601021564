package integration

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/server"
)

// getWorks reports whether a Get through cli succeeds within a second.
func getWorks(cli *clientv3.Client) bool {
	cx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := cli.Get(cx, "k")
	return err == nil
}

// TestMaxClientConnections: with --max-client-connections=2 and two
// connections held open, a third client fails fast (the connection is
// closed at once); when one closes, clients connect again.
func TestMaxClientConnections(t *testing.T) {
	c := newCluster(t, 1, func(cfg *server.Config) { cfg.MaxClientConnections = 2 })
	var held []net.Conn
	for i := 0; i < 2; i++ {
		conn, err := net.Dial("tcp", c.endpoint(0))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	cli := c.client(0)
	cx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := cli.Get(cx, "k")
	cancel()
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third connection: %v, want it refused", err)
	}
	// The refused connection was closed by the server, not left waiting.
	conn, err := net.Dial("tcp", c.endpoint(0))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("a connection over the limit was not closed at once: %v", err)
	}
	conn.Close()
	held[0].Close()
	waitUntil(t, 15*time.Second, "get after a slot was freed", func() bool { return getWorks(cli) })
	held[1].Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestMaxConcurrentStreams: with --max-concurrent-streams=1 a connection
// holding a watch stream cannot start another RPC until the watch ends.
func TestMaxConcurrentStreams(t *testing.T) {
	c := newCluster(t, 1, func(cfg *server.Config) { cfg.MaxConcurrentStreams = 1 })
	cli := c.client(0)
	if _, err := cli.Put(ctx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	wch := cli.Watch(wctx, "k", clientv3.WithRev(1)) // delivers the put above at once
	select {
	case <-wch:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch never delivered")
	}
	cx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := cli.Get(cx, "k")
	cancel()
	if status.Code(err) != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second RPC beside the watch: %v, want it held back until its deadline", err)
	}
	wcancel()
	waitUntil(t, 10*time.Second, "get after the watch ended", func() bool { return getWorks(cli) })
}

// TestMaxWatchersPerStream: with --max-watchers-per-stream=2 the third
// watcher on one stream is refused with a clear reason; the first two keep
// working.
func TestMaxWatchersPerStream(t *testing.T) {
	c := newCluster(t, 1, func(cfg *server.Config) { cfg.MaxWatchers = 2 })
	cli := c.client(0)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w1, w2 := cli.Watch(wctx, "a"), cli.Watch(wctx, "b")
	w3 := cli.Watch(wctx, "c")
	select {
	case r, ok := <-w3:
		if !ok || !r.Canceled || !strings.Contains(r.Err().Error(), "too many watchers on one stream") {
			t.Fatalf("third watcher: %+v (open %v), err %v; want it canceled", r, ok, r.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the third watcher was neither refused nor answered")
	}
	if _, err := cli.Put(ctx(t), "a", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx(t), "b", "1"); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]clientv3.WatchChan{"a": w1, "b": w2} {
		select {
		case r := <-w:
			if len(r.Events) != 1 || string(r.Events[0].Kv.Key) != name {
				t.Fatalf("watcher %s: %+v", name, r)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher %s saw nothing", name)
		}
	}
}

// TestRequestSizeBounds: a request over --max-request-bytes gets etcd's
// "request is too large"; one over the gRPC receive limit (the request
// limit + 512 KiB, as in etcd) gets gRPC's ResourceExhausted; the member
// keeps serving after both.
func TestRequestSizeBounds(t *testing.T) {
	c := newCluster(t, 1, func(cfg *server.Config) { cfg.MaxRequestBytes = 1024 })
	cli := c.client(0)
	if _, err := cli.Put(ctx(t), "k", strings.Repeat("x", 2000)); !errors.Is(err, rpctypes.ErrRequestTooLarge) {
		t.Fatalf("over --max-request-bytes: %v", err)
	}
	_, err := cli.Put(ctx(t), "k", strings.Repeat("x", 1024+512*1024+1))
	if s, _ := status.FromError(err); s.Code() != codes.ResourceExhausted || !strings.Contains(s.Message(), "larger than max") {
		t.Fatalf("over the gRPC receive limit: %v", err)
	}
	if _, err := cli.Put(ctx(t), "k", "small"); err != nil {
		t.Fatalf("after refused requests: %v", err)
	}
}
