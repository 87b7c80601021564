// Package etcdyaml reads etcd's YAML configuration file (etcd
// --config-file) into the command-line flags it stands for, so that synod
// serve applies a file through the same flag values, checks and defaults as
// its command line.
//
// The file is decoded as etcd decodes it (YAML converted to JSON, then
// JSON into a struct with etcd's key names and Go types), so a value of the
// wrong type is refused with etcd's own message. Durations are integer
// nanoseconds, as in etcd; heartbeat-interval and election-timeout are
// milliseconds. Keys etcd does not know are ignored, as etcd ignores them.
package etcdyaml
