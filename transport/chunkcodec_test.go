package transport

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// stockSnapshot sends a MsgSnap and chunks to member 2 at addr the way a
// release without peerCodec does: google.protobuf.BytesValue messages
// through gRPC's own proto codec. It returns the receiver's verdict.
func stockSnapshot(t *testing.T, addr string, chunks []*wrapperspb.BytesValue) error {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), mdCluster, strconv.FormatUint(testCluster, 10),
		mdFrom, "1", mdTo, "2")
	cs, err := conn.NewStream(ctx, &serviceDesc.Streams[snapshotStream], snapshotMethod)
	if err != nil {
		t.Fatal(err)
	}
	head, err := proto.Marshal(snapMsg(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range append([]*wrapperspb.BytesValue{{Value: head}}, chunks...) {
		if err := cs.SendMsg(m); err != nil {
			return sendFailed(cs, err)
		}
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	return cs.RecvMsg(new(emptypb.Empty))
}

// TestPeerCodecReceivesStockChunks: a peer server made with ServerOptions
// receives the chunks of a sender without peerCodec byte for byte,
// whatever form of BytesValue they take (an empty one, a value followed by
// a field it does not know), and refuses a chunk above ChunkSize.
func TestPeerCodecReceivesStockChunks(t *testing.T) {
	b := startMember(t, 2, testCluster, Config{}, ServerOptions()...)
	got := readSnapshots(b.rec)
	odd := &wrapperspb.BytesValue{Value: []byte("then a field of a later release")}
	odd.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 9, protowire.BytesType), "unknown"))
	chunks := []*wrapperspb.BytesValue{{Value: randomBytes(ChunkSize, 1)}, {}, {Value: []byte("five!")}, odd, {Value: randomBytes(ChunkSize-3, 2)}}
	if err := stockSnapshot(t, b.addr, chunks); err != nil {
		t.Fatalf("receiver: %v", err)
	}
	var want []byte
	for _, c := range chunks {
		want = append(want, c.GetValue()...)
	}
	if data, _ := got(); !bytes.Equal(data, want) {
		t.Fatalf("receiver got %d bytes, differing from the %d sent", len(data), len(want))
	}
	err := stockSnapshot(t, b.addr, []*wrapperspb.BytesValue{{Value: make([]byte, ChunkSize+1)}})
	if status.Code(err) != codes.Aborted || !strings.Contains(status.Convert(err).Message(), "exceeds") {
		t.Fatalf("a chunk of ChunkSize+1 bytes: %v, want Aborted (exceeds)", err)
	}
}
