package simulation

import (
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestNetwork checks delivery counts and delays for each kind of network
// misbehaviour, over many messages.
func TestNetwork(t *testing.T) {
	app, prop := raftpb.MessageType_MsgApp, raftpb.MessageType_MsgProp
	tests := []struct {
		name       string
		cfg        netConfig
		typ        raftpb.MessageType
		cut        []link
		cutInAir   bool // cut the link right after sending
		perMessage int  // deliveries of each message
	}{
		{"reliable", netConfig{MinDelay: 2, MaxDelay: 5}, app, nil, false, 1},
		{"all lost", netConfig{MinDelay: 1, MaxDelay: 5, Loss: 1}, app, nil, false, 0},
		{"all duplicated", netConfig{MinDelay: 1, MaxDelay: 5, Dup: 1}, app, nil, false, 2},
		{"proposals never duplicated", netConfig{MinDelay: 1, MaxDelay: 5, Dup: 1}, prop, nil, false, 1},
		{"cut link", netConfig{MinDelay: 1, MaxDelay: 5}, app, []link{{1, 2}}, false, 0},
		{"other direction still works", netConfig{MinDelay: 1, MaxDelay: 5}, app, []link{{2, 1}}, false, 1},
		{"cut while in flight", netConfig{MinDelay: 1, MaxDelay: 5}, app, []link{{1, 2}}, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s scheduler
			got := map[uint64]int{}
			n := &network{cfg: tc.cfg, rng: rand.New(rand.NewPCG(1, 1)), sched: &s, cut: map[link]bool{},
				trace: func(string, ...any) {}}
			n.deliver = func(h *heldMsg) bool {
				m := h.msg
				if d := Time(m.GetIndex()); s.now-d < tc.cfg.MinDelay || s.now-d > tc.cfg.MaxDelay {
					t.Fatalf("message sent at %d delivered at %d: outside [%d, %d]", d, s.now, tc.cfg.MinDelay, tc.cfg.MaxDelay)
				}
				got[m.GetIndex()]++
				return true
			}
			if !tc.cutInAir {
				n.apply(partition{cut: tc.cut})
			}
			for i := 0; i < 100; i++ {
				s.runUntil(Time(10 * (i + 1)))
				n.send(&raftpb.Message{Type: tc.typ.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Index: proto.Uint64(uint64(s.now))})
				if tc.cutInAir {
					n.apply(partition{cut: tc.cut})
				}
			}
			s.runUntil(10_000)
			total := 0
			for _, c := range got {
				if c != tc.perMessage {
					t.Fatalf("a message was delivered %d times, want %d", c, tc.perMessage)
				}
				total += c
			}
			if total != 100*tc.perMessage {
				t.Fatalf("%d deliveries of 100 messages, want %d", total, 100*tc.perMessage)
			}
		})
	}
}

// TestNetworkReorders: with Reorder, some messages are overtaken by
// messages sent after them, and none is delayed past 6*MaxDelay.
func TestNetworkReorders(t *testing.T) {
	var s scheduler
	cfg := netConfig{MinDelay: 1, MaxDelay: 4, Reorder: 0.3}
	n := &network{cfg: cfg, rng: rand.New(rand.NewPCG(3, 3)), sched: &s, cut: map[link]bool{}, trace: func(string, ...any) {}}
	var order []uint64
	n.deliver = func(h *heldMsg) bool {
		m := h.msg
		if s.now-Time(m.GetIndex()) > 6*cfg.MaxDelay {
			t.Fatalf("message sent at %d delivered at %d", m.GetIndex(), s.now)
		}
		order = append(order, m.GetIndex())
		return true
	}
	for i := 0; i < 200; i++ {
		s.runUntil(Time(i))
		n.send(&raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Index: proto.Uint64(uint64(i))})
	}
	s.runUntil(10_000)
	overtaken := 0
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			overtaken++
		}
	}
	if len(order) != 200 || overtaken == 0 {
		t.Fatalf("%d delivered, %d overtaken: want 200 delivered and some reordering", len(order), overtaken)
	}
}
