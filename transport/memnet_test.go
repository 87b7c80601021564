package transport

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// memCluster joins members 1..n to a new MemNetwork.
func memCluster(t *testing.T, n int) (*MemNetwork, []Transport, []*recorder) {
	t.Helper()
	net := NewMemNetwork()
	trs := make([]Transport, n+1)
	recs := make([]*recorder, n+1)
	for id := 1; id <= n; id++ {
		recs[id] = newRecorder()
		trs[id] = net.Join(uint64(id), recs[id])
		tr := trs[id]
		t.Cleanup(func() { tr.Close() })
	}
	return net, trs, recs
}

func TestMemDeliversInOrderWithoutSharing(t *testing.T) {
	_, trs, recs := memCluster(t, 2)
	var sent []*raftpb.Message
	for i := range 1000 {
		sent = append(sent, msg(1, 2, uint64(i), []byte{byte(i)}))
	}
	trs[1].Send(sent)
	sent[0].Index = proto.Uint64(999999) // the receiver must hold a copy
	got := recs[2].waitMsgs(t, 1000)
	for i, m := range got {
		if m.GetIndex() != uint64(i) || m.GetEntries()[0].GetData()[0] != byte(i) {
			t.Fatalf("message %d: got index %d", i, m.GetIndex())
		}
	}
	if c := recs[1].unreachableCount(2); c != 0 {
		t.Fatalf("ReportUnreachable on a healthy link: %d", c)
	}
}

func TestMemPartition(t *testing.T) {
	net, trs, recs := memCluster(t, 3)
	net.Partition([]uint64{1, 2}, []uint64{3})

	trs[1].Send([]*raftpb.Message{msg(1, 2, 1, nil), msg(1, 3, 1, nil)})
	trs[3].Send([]*raftpb.Message{msg(3, 1, 1, nil)})
	recs[2].waitMsgs(t, 1) // same group: delivered
	recs[1].waitUnreachable(t, 3)
	recs[3].waitUnreachable(t, 1)

	net.Heal()
	// Links are FIFO: if the message sent across the partition had been
	// delivered, it would arrive before the marker.
	sendUntil(t, trs[1], 1, 3, recs[3])
	sendUntil(t, trs[3], 3, 1, recs[1])
	for _, r := range []*recorder{recs[1], recs[3]} {
		if got := r.snapshotMsgs(); !isMarker(got[0]) {
			t.Fatalf("a message crossed the partition: %v", got[0])
		}
	}
}

func TestMemPartitionIsolatesUnlistedMembers(t *testing.T) {
	net, trs, recs := memCluster(t, 3)
	net.Partition([]uint64{1, 2})
	trs[3].Send([]*raftpb.Message{msg(3, 1, 1, nil)})
	recs[3].waitUnreachable(t, 1)
}

func TestMemOneWayCut(t *testing.T) {
	net, trs, recs := memCluster(t, 2)
	net.Cut(1, 2)
	trs[1].Send([]*raftpb.Message{msg(1, 2, 1, nil)})
	recs[1].waitUnreachable(t, 2)
	trs[2].Send([]*raftpb.Message{msg(2, 1, 7, nil)}) // other direction still up
	if got := recs[1].waitMsgs(t, 1); got[0].GetIndex() != 7 {
		t.Fatalf("got %v", got[0])
	}
	net.Restore(1, 2)
	sendUntil(t, trs[1], 1, 2, recs[2])
	if got := recs[2].snapshotMsgs(); !isMarker(got[0]) {
		t.Fatalf("a message crossed the cut: %v", got[0])
	}
}

func TestMemLeaveAndRejoin(t *testing.T) {
	net, trs, recs := memCluster(t, 2)
	net.Leave(2)
	trs[1].Send([]*raftpb.Message{msg(1, 2, 1, nil)})
	recs[1].waitUnreachable(t, 2)
	trs[2].Send([]*raftpb.Message{msg(2, 1, 1, nil)}) // a crashed member's sends vanish

	rec2 := newRecorder()
	tr2 := net.Join(2, rec2)
	defer tr2.Close()
	sendUntil(t, tr2, 2, 1, recs[1])
	if got := recs[1].snapshotMsgs(); !isMarker(got[0]) {
		t.Fatalf("the crashed incarnation's message was delivered: %v", got[0])
	}
	sendUntil(t, trs[1], 1, 2, rec2)
	if got := recs[2].snapshotMsgs(); len(got) != 0 {
		t.Fatalf("the old incarnation received %d messages", len(got))
	}
}

// dropPattern sends n messages over a lossy link and returns the indexes
// that arrived.
func dropPattern(t *testing.T, p float64, seed int64, n int) []uint64 {
	t.Helper()
	net, trs, recs := memCluster(t, 2)
	net.SetDropRate(p, seed)
	for i := range n {
		trs[1].Send([]*raftpb.Message{msg(1, 2, uint64(i), nil)})
	}
	net.SetDropRate(0, 0)
	sendUntil(t, trs[1], 1, 2, recs[2])
	var got []uint64
	for _, m := range recs[2].snapshotMsgs() {
		if !isMarker(m) {
			got = append(got, m.GetIndex())
		}
	}
	return got
}

func TestMemDropRateReproducible(t *testing.T) {
	const n = 2000
	a := dropPattern(t, 0.3, 42, n)
	b := dropPattern(t, 0.3, 42, n)
	c := dropPattern(t, 0.3, 43, n)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different loss pattern")
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds, same loss pattern")
	}
	if lost := n - len(a); lost < n/5 || lost > n*2/5 {
		t.Fatalf("lost %d of %d at p=0.3", lost, n)
	}
}

func TestMemQueueFullDropsWithoutBlocking(t *testing.T) {
	_, trs, recs := memCluster(t, 2)
	release := recs[2].block()
	defer release()
	const n = DefaultQueueSize + 500
	for i := range n { // would deadlock if Send blocked or called Process inline
		trs[1].Send([]*raftpb.Message{msg(1, 2, uint64(i), nil)})
	}
	recs[1].waitUnreachable(t, 2)
	release()
	sendUntil(t, trs[1], 1, 2, recs[2])
	if got := len(recs[2].snapshotMsgs()); got >= n {
		t.Fatalf("all %d messages delivered despite a full queue", got)
	}
}

func TestMemSnapshot(t *testing.T) {
	_, trs, recs := memCluster(t, 2)
	body := randomBytes(3<<20+7, 5)
	got := make(chan []byte, 1)
	recs[2].onSnapshot = func(m *raftpb.Message, r io.Reader) error {
		var data []byte
		buf := make([]byte, 2*ChunkSize)
		for {
			n, err := r.Read(buf)
			if n > ChunkSize {
				return errors.New("chunk larger than ChunkSize")
			}
			data = append(data, buf[:n]...)
			if err == io.EOF {
				got <- data
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	done := make(chan error, 1)
	trs[1].SendSnapshot(snapMsg(1, 2), bytes.NewReader(body), func(err error) { done <- err })
	if err := waitDone(t, done); err != nil {
		t.Fatalf("done(%v)", err)
	}
	if data := waitDone(t, got); !bytes.Equal(data, body) {
		t.Fatal("snapshot body differs")
	}
	if rep := recs[1].waitSnapReport(t); rep != (snapReport{2, false}) {
		t.Fatalf("ReportSnapshot%v", rep)
	}
}

func TestMemSnapshotFailures(t *testing.T) {
	net, trs, recs := memCluster(t, 2)
	recs[2].onSnapshot = func(*raftpb.Message, io.Reader) error { return errors.New("no space") }
	done := make(chan error, 1)
	trs[1].SendSnapshot(snapMsg(1, 2), bytes.NewReader(make([]byte, 5<<20)), func(err error) { done <- err })
	if err := waitDone(t, done); !errors.Is(err, ErrSnapshotRejected) || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("done(%v), want ErrSnapshotRejected", err)
	}
	if rep := recs[1].waitSnapReport(t); rep != (snapReport{2, true}) {
		t.Fatalf("ReportSnapshot%v", rep)
	}

	net.Cut(1, 2)
	trs[1].SendSnapshot(snapMsg(1, 2), bytes.NewReader(nil), func(err error) { done <- err })
	if err := waitDone(t, done); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("done(%v), want ErrUnreachable", err)
	}

	// A cut in the middle of the stream breaks it.
	net.Restore(1, 2)
	recs[2].onSnapshot = func(m *raftpb.Message, r io.Reader) error {
		if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
			return err
		}
		net.Cut(1, 2)
		_, err := io.Copy(io.Discard, r)
		return err
	}
	trs[1].SendSnapshot(snapMsg(1, 2), endlessBody{}, func(err error) { done <- err })
	if err := waitDone(t, done); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("done(%v), want ErrUnreachable", err)
	}
}

func TestMemCloseWaitsAndSilences(t *testing.T) {
	net := NewMemNetwork()
	rec1, rec2 := newRecorder(), newRecorder()
	tr1, tr2 := net.Join(1, rec1), net.Join(2, rec2)
	defer tr1.Close()
	release := rec2.block()
	tr1.Send([]*raftpb.Message{msg(1, 2, 1, nil)})
	rec2.waitFor(t, "blocked Process", func(r *recorder) bool { return r.blocked > 0 })
	closed := make(chan error, 1)
	go func() { closed <- tr2.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a Handler call was in progress")
	default:
	}
	release()
	if err := waitDone(t, closed); err != nil {
		t.Fatal(err)
	}
	n := len(rec2.snapshotMsgs())
	if n != 1 {
		t.Fatalf("Close returned before the in-flight Process call finished (%d recorded)", n)
	}
	tr1.Send([]*raftpb.Message{msg(1, 2, 2, nil)})
	rec1.waitUnreachable(t, 2)
	tr2.Send([]*raftpb.Message{msg(2, 1, 1, nil)})
	if got := len(rec2.snapshotMsgs()); got != n {
		t.Fatal("Process called after Close")
	}
}

func TestMemSendMisuse(t *testing.T) {
	_, trs, recs := memCluster(t, 2)
	trs[1].Send([]*raftpb.Message{snapMsg(1, 2), msg(1, 9, 1, nil)})
	recs[1].waitUnreachable(t, 9)
	if rep := recs[1].waitSnapReport(t); rep != (snapReport{2, true}) {
		t.Fatalf("ReportSnapshot%v", rep)
	}
}
