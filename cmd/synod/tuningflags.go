package main

import (
	"flag"
	"time"

	"github.com/synod-db/synod/etcdapi"
	"github.com/synod-db/synod/server"
	"github.com/synod-db/synod/watch"
)

// tuningFlags are etcd's storage, keep-alive and warning flags that synod
// implements.
type tuningFlags struct {
	raftRead, raftWrite time.Duration
}

// minRaftTimeout is etcd's floor for --raft-read-timeout and
// --raft-write-timeout (rafthttp's defaults).
const minRaftTimeout = 5 * time.Second

func (t *tuningFlags) bind(fs *flag.FlagSet, c *server.Config) {
	fs.StringVar(&c.WALDir, "wal-dir", "", "Path to the dedicated wal directory (Pebble's write-ahead log, which carries the raft log).")
	fs.BoolVar(&c.UnsafeNoFsync, "unsafe-no-fsync", false, "Disables fsync, unsafe, will cause data loss.")
	fs.DurationVar(&c.WatchProgressNotifyInterval, "watch-progress-notify-interval", watch.DefaultProgressInterval, "Duration of periodic watch progress notifications.")
	fs.DurationVar(&c.GRPCKeepAliveMinTime, "grpc-keepalive-min-time", etcdapi.DefaultKeepaliveMinTime, "Minimum interval duration that a client should wait before pinging server.")
	fs.DurationVar(&c.GRPCKeepAliveInterval, "grpc-keepalive-interval", etcdapi.DefaultKeepaliveInterval, "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).")
	fs.DurationVar(&c.GRPCKeepAliveTimeout, "grpc-keepalive-timeout", etcdapi.DefaultKeepaliveTimeout, "Additional duration of wait before closing a non-responsive connection (0 to disable).")
	fs.DurationVar(&c.WarningUnaryRequestDuration, "warning-unary-request-duration", etcdapi.DefaultSlowRequest, "Time duration after which a warning is generated if a unary request takes more time.")
	fs.DurationVar(&c.WarningApplyDuration, "warning-apply-duration", server.DefaultWarningApplyDuration, "Time duration after which a warning is generated if applying committed entries takes more time.")
	fs.IntVar(&c.CompactionBatchLimit, "compaction-batch-limit", 0, "CompactionBatchLimit sets the maximum revisions deleted in each compaction batch (0: synod's default, 10000).")
	fs.Uint64Var(&c.SnapshotCatchUpEntries, "snapshot-catchup-entries", 5000, "Number of entries for a slow follower to catch up after compacting the raft storage entries.")
	fs.BoolVar(&c.SocketReusePort, "socket-reuse-port", false, "Enable to set socket option SO_REUSEPORT on listeners allowing rebinding of a port already in use.")
	fs.BoolVar(&c.SocketReuseAddress, "socket-reuse-address", false, "Enable to set socket option SO_REUSEADDR on listeners allowing binding to an address in TIME_WAIT state.")
	fs.UintVar(&c.SelfSignedCertValidity, "self-signed-cert-validity", 1, "The validity period of the client and peer certificates that are automatically generated when you specify --auto-tls and --peer-auto-tls, the unit is year.")
	fs.DurationVar(&t.raftRead, "raft-read-timeout", minRaftTimeout, "Read timeout set on each rafthttp connection (no effect: synod's peers talk gRPC streams).")
	fs.DurationVar(&t.raftWrite, "raft-write-timeout", minRaftTimeout, "Write timeout set on each rafthttp connection (no effect: synod's peers talk gRPC streams).")
}

// check has nothing to refuse: etcd raises raft timeouts below its floor
// rather than refusing them (notes says so).
func (t *tuningFlags) check() error { return nil }

// notes are the lines etcd logs about these flags, and synod's warning
// for --unsafe-no-fsync.
func (t *tuningFlags) notes(set map[string]bool) []string {
	var out []string
	if set["raft-read-timeout"] || set["raft-write-timeout"] {
		out = append(out, "--raft-read-timeout and --raft-write-timeout have no effect: synod's peers exchange raft messages on gRPC streams, not rafthttp connections")
	}
	return out
}
