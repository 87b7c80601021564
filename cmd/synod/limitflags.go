package main

import (
	"flag"
	"strconv"

	"github.com/synod-db/synod/etcdapi"
	"github.com/synod-db/synod/server"
	"github.com/synod-db/synod/watch"
)

// bindAuditAndLimitFlags binds the audit log flags and the connection and
// stream bounds to c (see docs/security.md).
func bindAuditAndLimitFlags(fs *flag.FlagSet, c *server.Config) {
	fs.StringVar(&c.AuditLog, "audit-log", "", "Write an audit log (one JSON line per mutating request or auth decision) to this file, or '-' for standard output. Off when empty.")
	fs.IntVar(&c.AuditLogMaxSize, "audit-log-max-size", c.AuditLogMaxSize, "Rotate the audit log when it would grow past this many MiB (0: never).")
	fs.IntVar(&c.AuditLogMaxBackups, "audit-log-max-backups", c.AuditLogMaxBackups, "Rotated audit logs to keep (0: none).")
	c.MaxConcurrentStreams = etcdapi.DefaultMaxConcurrentStreams
	fs.Var((*uint32Value)(&c.MaxConcurrentStreams), "max-concurrent-streams", "Maximum concurrent streams that each client gRPC connection can use.")
	fs.IntVar(&c.MaxClientConnections, "max-client-connections", 0, "Maximum open connections on each client listener; more are closed at once (0: no limit). A synod flag.")
	fs.IntVar(&c.MaxWatchers, "max-watchers-per-stream", watch.DefaultMaxWatchers, "Maximum watchers one watch stream may hold. A synod flag.")
}

// uint32Value is a flag.Value for a uint32.
type uint32Value uint32

func (v *uint32Value) String() string { return strconv.FormatUint(uint64(*v), 10) }

func (v *uint32Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return err
	}
	*v = uint32Value(n)
	return nil
}
