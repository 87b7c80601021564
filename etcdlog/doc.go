// Package etcdlog gives synod's structured logs etcd's shape: a
// log/slog.Logger whose records are written by zap with etcd's encoder
// settings (go.etcd.io/etcd/client/pkg/v3/logutil), so every JSON line reads
// {"level":"info","ts":"...","caller":"pkg/file.go:42","msg":"...",...}
// as etcd's do, and the outputs, levels and formats are etcd's --log-outputs,
// --log-level and --log-format.
package etcdlog
