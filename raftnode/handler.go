package raftnode

import (
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// The methods below implement transport.Handler. The transport calls them
// from its own goroutines; none blocks on the raft loop for long.

// Process queues a received message for the raft loop, dropping it when the
// inbox is full (raft retransmits what matters).
func (n *Node) Process(m *raftpb.Message) {
	select {
	case n.recvc <- m:
	default:
	}
}

// ReportUnreachable tells raft that a message to id could not be sent.
func (n *Node) ReportUnreachable(id uint64) {
	select {
	case n.unreach <- id:
	default:
	}
}

// ReportSnapshot tells raft how sending a snapshot to id ended.
func (n *Node) ReportSnapshot(id uint64, failed bool) {
	select {
	case n.snapc <- snapStatus{to: id, failed: failed}:
	case <-n.done:
	}
}

// ReceiveSnapshot stores and verifies a snapshot stream, then hands its
// message to raft.
func (n *Node) ReceiveSnapshot(m *raftpb.Message, body io.Reader) error {
	return n.receiveSnapshot(m, body)
}
