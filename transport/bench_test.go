package transport

import (
	"io"
	"net"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
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

// BenchmarkGRPCThroughput measures MsgApp delivery (one 256 byte entry each)
// between two members on loopback, keeping at most half a queue in flight.
func BenchmarkGRPCThroughput(b *testing.B) {
	const step = 512
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	recv := &countHandler{step: step, tick: make(chan struct{}, 1024)}
	rt := NewGRPC(Config{LocalID: 2, ClusterID: 1, Handler: recv})
	srv := grpc.NewServer()
	rt.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	defer rt.Close()
	st := NewGRPC(Config{LocalID: 1, ClusterID: 1, Handler: &countHandler{step: 1 << 62}})
	defer st.Close()
	st.AddPeer(2, []string{"http://" + lis.Addr().String()})

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
