package transport

import (
	"io"
	"log"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/mvcc"
)

// countHandler counts processed messages and signals every step of them.
type countHandler struct {
	n    atomic.Int64
	step int64
	tick chan struct{}
}

func (h *countHandler) Process(*raftpb.Message) {
	if h.n.Add(1)%h.step == 0 {
		h.tick <- struct{}{}
	}
}
func (h *countHandler) ReportUnreachable(uint64)    {}
func (h *countHandler) ReportSnapshot(uint64, bool) {}
func (h *countHandler) ReceiveSnapshot(*raftpb.Message, io.Reader) error {
	return nil
}

// benchLink starts member 2, whose Handler is recv, on a loopback peer
// server made with opts, and returns member 1's transport, which knows it.
func benchLink(b *testing.B, recv Handler, opts ...grpc.ServerOption) *GRPC {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	rt := NewGRPC(Config{LocalID: 2, ClusterID: 1, Handler: recv})
	srv := grpc.NewServer(opts...)
	rt.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	st := NewGRPC(Config{LocalID: 1, ClusterID: 1, Handler: &countHandler{step: 1 << 62}})
	st.AddPeer(2, []string{"http://" + lis.Addr().String()})
	b.Cleanup(func() { st.Close(); srv.Stop(); rt.Close() })
	return st
}

// BenchmarkGRPCThroughput measures MsgApp delivery (one 256 byte entry each)
// between two members on loopback, keeping at most half a queue in flight.
func BenchmarkGRPCThroughput(b *testing.B) {
	const step = 512
	recv := &countHandler{step: step, tick: make(chan struct{}, 1024)}
	st := benchLink(b, recv)

	msgs := make([]*raftpb.Message, step)
	for i := range msgs {
		msgs[i] = msg(1, 2, uint64(i), make([]byte, 256))
	}
	// Warm up: the first batch waits for the connection.
	st.Send(msgs)
	<-recv.tick
	b.SetBytes(int64(len(msgs[0].GetEntries()[0].GetData())))
	b.ResetTimer()
	inFlight := 0
	for sent := 0; sent < b.N; sent += step {
		if inFlight >= DefaultQueueSize/2 {
			<-recv.tick
			inFlight -= step
		}
		st.Send(msgs)
		inFlight += step
	}
	for ; inFlight > 0; inFlight -= step {
		<-recv.tick
	}
}

// storeHandler hands a received snapshot body to a real store's
// ReceiveSnapshot, as raftnode does.
type storeHandler struct {
	countHandler
	s *mvcc.Store
}

func (h *storeHandler) ReceiveSnapshot(m *raftpb.Message, body io.Reader) error {
	md := m.GetSnapshot().GetMetadata()
	return h.s.ReceiveSnapshot(md.GetIndex(), md.GetTerm(), body)
}

// benchStore opens a store on disk in dir laid out as a member's
// (mvcc.SetKeyLayout, mvcc.BlockSize, an 8 MiB block cache) and applies
// puts of n distinct keys, each of one random 1 KiB value (as etcd's
// benchmark tool writes them), flushed to sstables.
func benchStore(b *testing.B, dir string, n int) (*mvcc.Store, *pebble.DB) {
	o := &pebble.Options{Cache: pebble.NewCache(8 << 20), FormatMajorVersion: pebble.FormatTableFormatV6, Logger: quietPebble{}}
	defer o.Cache.Unref()
	for i := range o.Levels {
		o.Levels[i].BlockSize = mvcc.BlockSize
	}
	mvcc.SetKeyLayout(o)
	db, err := pebble.Open(dir, o)
	if err != nil {
		b.Fatal(err)
	}
	s, err := mvcc.Open(db, mvcc.Options{IngestDir: dir + ".ingest"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(); _ = db.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, 1024)
	for i := range val {
		val[i] = byte(rng.Uint32())
	}
	for i := 0; i < n; i += 1000 {
		g, err := s.NewGroup()
		if err != nil {
			b.Fatal(err)
		}
		for j := i; j < min(n, i+1000); j++ {
			key := []byte("/registry/key/" + strconv.Itoa(j))
			if _, err := g.Apply(uint64(j+1), 1, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key, Value: val}}); err != nil {
				b.Fatal(err)
			}
		}
		if err := g.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := db.Compact(b.Context(), []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err) // no compaction left running while the benchmark measures
	}
	return s, db
}

// quietPebble keeps Pebble's informational chatter out of the output.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)              {}
func (quietPebble) Errorf(format string, args ...any) { log.Printf(format, args...) }
func (quietPebble) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }

// countingWriter counts the bytes of a stream.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkSnapshotCatchUp sends a real store's snapshot (64K keys of 1
// KiB) over a loopback gRPC connection to a member whose handler turns it
// into tables with mvcc's ReceiveSnapshot: the whole path of a new
// member's catch-up, sender and receiver in one process (a CPU profile of
// it shows both sides).
func BenchmarkSnapshotCatchUp(b *testing.B) {
	src, _ := benchStore(b, filepath.Join(b.TempDir(), "src"), 64<<10)
	dst, _ := benchStore(b, filepath.Join(b.TempDir(), "dst"), 0)
	sn := src.NewSnapshot()
	defer sn.Close()
	var size countingWriter
	if _, err := sn.WriteTo(&size); err != nil {
		b.Fatal(err)
	}
	st := benchLink(b, &storeHandler{s: dst}, ServerOptions()...)
	m := &raftpb.Message{
		Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(1),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(sn.Index()), Term: proto.Uint64(sn.Term())}},
	}
	b.SetBytes(size.n)
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		done := make(chan error, 1)
		st.SendSnapshot(m, sn, func(err error) { done <- err })
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(size.n)/float64(b.N), "cpu-ns/B")
}

// cpuTime is the CPU time (user and system) the process used so far, in ns.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
