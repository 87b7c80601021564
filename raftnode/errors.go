package raftnode

import "errors"

// Errors returned by Node's request methods (Propose, ReadIndex). The API
// edge maps each to etcd's gRPC status exactly once (etcdapi/errors.go).
var (
	// ErrNoLeader: the member knows no leader, so it cannot order a request.
	ErrNoLeader = errors.New("raftnode: no leader")
	// ErrTimeout: the request's deadline passed before raft committed and applied it.
	ErrTimeout = errors.New("raftnode: request timed out")
	// ErrStopped: the member is shutting down.
	ErrStopped = errors.New("raftnode: stopped")
	// ErrLeaderChanged: leadership changed while a linearizable read waited for its read index.
	ErrLeaderChanged = errors.New("raftnode: leader changed")
	// ErrLeaderLost: the member lost its leader while a proposal was in
	// flight. The proposal may or may not be applied later (etcd's
	// "request timed out, possibly due to previous leader failure").
	ErrLeaderLost = errors.New("raftnode: leader lost while the request was in flight")
	// ErrNotLeader: a request only the leader serves (MoveLeader) reached
	// another member.
	ErrNotLeader = errors.New("raftnode: not leader")
	// ErrBadTransferee: the target of a leadership transfer is not a voting
	// member.
	ErrBadTransferee = errors.New("raftnode: bad leader transferee")
	// ErrTransferTimeout: leadership did not move before the caller's
	// deadline (etcd's "request timed out, leader transfer took too long").
	ErrTransferTimeout = errors.New("etcdserver: request timed out, leader transfer took too long")
	// ErrTooManyRequests: the proposal queue is full.
	ErrTooManyRequests = errors.New("raftnode: too many requests")
	// ErrConfChangePending: the leader dropped a membership change because
	// an earlier one is not applied yet. Nothing changed; retry later.
	ErrConfChangePending = errors.New("raftnode: another membership change is in progress")
	// ErrConfChangeRejected marks a replayed membership change that the
	// Applier rejected when it was first applied.
	ErrConfChangeRejected = errors.New("raftnode: membership change rejected")
)
