// Package raftnode drives one member's consensus. It is split as
// go.etcd.io/raft splits RawNode from node: Core is the step function, a
// raft.RawNode from go.etcd.io/raft/v3 and every side effect raft asks for as
// plain methods (Tick, Step, ProposeAsync, ReadIndexAsync, Advance) over
// interfaces (the log store, the Applier, a Sender), with no goroutines of
// its own; Node is the thin goroutine shell that owns the channels, runs the
// one loop that calls the Core, and gives client goroutines their blocking,
// deadline-bound Propose and ReadIndex. The deterministic simulation
// (package simulation) drives the same Core from its scheduler.
//
// Each turn of the loop takes what is waiting (a tick, received messages,
// a batch of proposals, a batch of linearizable reads), steps it into raft,
// and Core.Advance handles every resulting Ready in order:
//
//  1. a leader sends its messages first (it may persist in parallel with its
//     followers, Raft thesis §10.2.1);
//  2. on the leader, committed normal entries whose log entries an earlier
//     Save already made durable are applied (as in 6), so that they do not
//     wait for this Ready's fsync of newer entries (a follower does not: its
//     acknowledgement, sent after its Save, would wait for the apply);
//  3. an incoming snapshot is installed (log reset, then state restored);
//  4. HardState and entries are saved in one Pebble batch, fsynced whenever
//     raft.MustSync says so — before the leader's own copy counts (raft counts
//     it at Advance) and before a follower acknowledges (it sends after);
//  5. followers send their messages;
//  6. the other committed entries are applied through the Applier, which
//     stores the applied index in the same batch as the state: every run of
//     normal entries is one Applier.Apply (a lone entry is a run of one), a
//     configuration change is applied alone;
//  7. Advance.
//
// Either way an entry is applied only once its log entry is durable here.
//
// Client goroutines never touch raft. Propose hands a request to the loop
// over a bounded channel and waits on a waiter keyed by the request ID;
// ReadIndex joins the batch of reads waiting at that moment, and one raft
// ReadIndex (one quorum round) serves the whole batch. Both return promptly
// with ErrNoLeader when the member knows no leader, and clean up after a
// caller whose context ends.
//
// Membership changes take the same path with ProposeConfChange (a raft V1
// ConfChange, waiter keyed by its ID). The Applier validates each one before
// raft applies it; a rejected change reaches raft as node 0, and its verdict
// is stored so that a replay after a restart does the same.
package raftnode
