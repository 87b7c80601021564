package server

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/tlsconfig"
	"github.com/synod-db/synod/tracing"
)

// Config is one member's configuration. Field names follow etcd's flags
// (the cmd/synod serve command maps --flag-name to the field of the same
// name), so existing scripts and manifests carry over.
type Config struct {
	// HTTP is the HTTP side of the client URLs: etcd's JSON gateway and
	// its access control (server/web.go, docs/gateway.md).
	HTTP HTTPConfig

	Name                     string
	DataDir                  string
	ListenClientURLs         []string
	AdvertiseClientURLs      []string
	ListenPeerURLs           []string
	InitialAdvertisePeerURLs []string
	InitialCluster           string // name=peerURL,name=peerURL,...
	InitialClusterState      string // "new" or "existing"
	InitialClusterToken      string
	SnapshotCount            uint64
	HeartbeatInterval        time.Duration
	ElectionTimeout          time.Duration
	QuotaBackendBytes        int64
	MaxRequestBytes          int
	MaxTxnOps                int
	// ListenMetricsURLs are extra listeners that serve only the HTTP
	// endpoints (/metrics, /health, /livez, /readyz); the client URLs serve
	// them too.
	ListenMetricsURLs []string
	// CorruptCheckTime is how often the leader compares every member's
	// HashKV with its own and raises the CORRUPT alarm on a mismatch
	// (etcd's --corrupt-check-time); 0, the default as in etcd, disables
	// the check. Each check hashes the whole history twice on the leader
	// and once on every other member.
	CorruptCheckTime time.Duration
	// InitialCorruptCheck makes a restarted member compare its HashKV with
	// its peers' before it starts, and refuse to start on a mismatch
	// (etcd's --feature-gates=InitialCorruptCheck=true; off by default, as
	// in etcd).
	InitialCorruptCheck bool
	// CompactHashCheck makes every compaction record the hash of the
	// history it compacts, and the leader compare its recorded hashes
	// with every member's every CompactHashCheckTime, raising the CORRUPT
	// alarm for a minority that differs (etcd's
	// --feature-gates=CompactHashCheck=true; off by default, as in etcd).
	CompactHashCheck bool
	// CompactHashCheckTime is the interval of the compaction hash check
	// (etcd's --compact-hash-check-time, 1 minute by default; must be > 0).
	CompactHashCheckTime time.Duration
	// Operations: auto compaction and --force-new-cluster (server/autocompact.go,
	// server/forcenew.go; docs/maintenance.md, docs/membership.md).
	Operations
	// Bootstrap: discovery of the founding members and peer name
	// resolution (server/discover.go, docs/membership.md).
	Bootstrap
	// Tracing is etcd's distributed tracing (--enable-distributed-tracing,
	// --distributed-tracing-*): spans of the client API to an OTLP collector.
	Tracing tracing.Config
	// Consul is the member's Consul HTTP API (server/consul.go, docs/discovery.md).
	Consul ConsulConfig
	DNS    DNSConfig // Consul's DNS interface (server/consuldns.go)
	// EnablePprof serves Go's profiler at /debug/pprof/ on the HTTP endpoints.
	EnablePprof bool
	// MaxLearners bounds the learners in the membership (etcd's
	// --max-learners). Every member must use the same value.
	MaxLearners int
	// StrictReconfigCheck refuses membership changes that could cost the
	// cluster its quorum (etcd's --strict-reconfig-check, on by default).
	StrictReconfigCheck bool
	// ClientTLS is the client listeners' certificate flags (--cert-file,
	// --key-file, --trusted-ca-file, --client-cert-auth, --auto-tls).
	ClientTLS tlsconfig.Info
	// PeerTLS is the peer side's (--peer-cert-file, ...): it serves the
	// https:// peer listeners and dials https:// peer URLs.
	PeerTLS tlsconfig.Info
	// CipherSuites is --cipher-suites (comma-separated Go names); empty
	// means Go's defaults.
	CipherSuites string
	// TLSMinVersion is --tls-min-version: TLS1.2 (the default) or TLS1.3.
	TLSMinVersion string
	// TLSMaxVersion is --tls-max-version: TLS1.2, TLS1.3, or empty for Go's
	// highest.
	TLSMaxVersion string
	// AuditLog is --audit-log: the audit log's file, "-" for standard
	// output, empty for none (docs/security.md).
	AuditLog string
	// AuditLogMaxSize is --audit-log-max-size: the audit log is rotated
	// when it would grow past this many MiB; 0 never rotates.
	AuditLogMaxSize int
	// AuditLogMaxBackups is --audit-log-max-backups: rotated audit logs
	// kept (PATH.1 newest); 0 keeps none.
	AuditLogMaxBackups int
	// MaxConcurrentStreams is --max-concurrent-streams: the most concurrent
	// RPCs (streams) of one client connection; 0 means
	// etcdapi.DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxClientConnections is --max-client-connections (a synod flag): the
	// most open connections on each client listener; further connections
	// are closed at once. 0 means no limit.
	MaxClientConnections int
	// MaxWatchers is --max-watchers-per-stream (a synod flag): the most
	// watchers one Watch stream may hold; 0 means watch.DefaultMaxWatchers.
	MaxWatchers int
	// TLSReloadInterval is how often, at most, certificate files are checked
	// for a change; 0 means tlsconfig.DefaultReloadInterval.
	TLSReloadInterval time.Duration
	// BcryptCost is --bcrypt-cost: the cost of the password hashes this
	// member computes (etcd's range, 4 to 31; 0 means etcd's default, 10).
	BcryptCost int
	// AuthTokenTTL is --auth-token-ttl: how long the tokens this member
	// mints are valid (0 means etcd's default, 300 s).
	AuthTokenTTL time.Duration
	// WALDir is --wal-dir: the raft log's database (WALDir/raftlog, whose
	// synced appends are the member's fsyncs) and the state database's
	// Pebble write-ahead log are kept in this directory instead of under
	// DataDir (a separate disk takes the fsyncs off the data disk). Empty:
	// under DataDir. Every later start must name the same directory.
	WALDir string
	// FS is the filesystem the member's database is read and written
	// through; nil (every flag-built config) means the operating system's.
	// Tests inject faults with it (Pebble's errorfs).
	FS vfs.FS
	// UnsafeNoFsync is --unsafe-no-fsync: no write is fsynced, so a crash
	// or power loss can lose acknowledged writes and break raft's
	// guarantees. For throwaway test clusters only, as in etcd.
	UnsafeNoFsync bool
	// WatchProgressNotifyInterval is --watch-progress-notify-interval: the
	// period of progress notifications to watchers created with
	// progress_notify. 0 means etcd's default, 10 minutes.
	WatchProgressNotifyInterval time.Duration
	// GRPCKeepAliveMinTime, GRPCKeepAliveInterval and GRPCKeepAliveTimeout
	// are --grpc-keepalive-min-time (clients pinging more often are
	// disconnected), --grpc-keepalive-interval (an idle client connection is
	// pinged this often) and --grpc-keepalive-timeout (and closed when the
	// ping is not answered this soon). 0 means etcd's defaults: 5s, 2h, 20s.
	GRPCKeepAliveMinTime, GRPCKeepAliveInterval, GRPCKeepAliveTimeout time.Duration
	// WarningUnaryRequestDuration is --warning-unary-request-duration: a
	// unary request that takes longer is logged at warn level. 0 means
	// etcd's default, 300 ms.
	WarningUnaryRequestDuration time.Duration
	// WarningApplyDuration is --warning-apply-duration: applying one
	// committed entry that takes longer is logged at warn level. 0 means
	// etcd's default, 100 ms.
	WarningApplyDuration time.Duration
	// SelfSignedCertValidity is --self-signed-cert-validity: the years the
	// certificates generated for --auto-tls and --peer-auto-tls are valid
	// (0 means 1, etcd's default).
	SelfSignedCertValidity uint
	// SocketReusePort and SocketReuseAddress are --socket-reuse-port and
	// --socket-reuse-address: SO_REUSEPORT and SO_REUSEADDR on the client,
	// peer and metrics tcp listeners.
	SocketReusePort, SocketReuseAddress bool
	// SnapshotCatchUpEntries is --snapshot-catchup-entries: the raft entries
	// kept behind a snapshot for slow followers to catch up from (0 means
	// etcd's default, 5000; at most SnapshotCount).
	SnapshotCatchUpEntries uint64
	// CompactionBatchLimit is --compaction-batch-limit: the most versions
	// one batch of a physical compaction deletes (0 means synod's default,
	// 10000; etcd's is 1000).
	CompactionBatchLimit int
}

// Defaults are etcd's defaults, except the data directory.
const (
	DefaultName                = "default"
	DefaultDataDir             = "default.synod"
	DefaultClientURL           = "http://127.0.0.1:2379"
	DefaultPeerURL             = "http://127.0.0.1:2380"
	DefaultInitialClusterToken = "etcd-cluster"
	DefaultSnapshotCount       = 10000
	// DefaultCompactHashCheckTime is etcd's --compact-hash-check-time default.
	DefaultCompactHashCheckTime = time.Minute
	DefaultHeartbeatInterval    = 100 * time.Millisecond
	DefaultElectionTimeout      = 1000 * time.Millisecond
	DefaultQuotaBackendBytes    = 2 << 30
	DefaultMaxRequestBytes      = 1536 * 1024
	DefaultMaxTxnOps            = 128
	// DefaultAuditLogMaxSize is --audit-log-max-size's default, in MiB.
	DefaultAuditLogMaxSize = 100
	// DefaultAuditLogMaxBackups is --audit-log-max-backups's default.
	DefaultAuditLogMaxBackups = 10
	// DefaultWarningApplyDuration is etcd's --warning-apply-duration.
	DefaultWarningApplyDuration = 100 * time.Millisecond
)

// NewConfig returns a Config with every default filled in: a single-member
// cluster on 127.0.0.1:2379 with its data in ./default.synod.
func NewConfig() Config {
	return Config{
		Name:                     DefaultName,
		DataDir:                  DefaultDataDir,
		ListenClientURLs:         []string{DefaultClientURL},
		AdvertiseClientURLs:      []string{DefaultClientURL},
		ListenPeerURLs:           []string{DefaultPeerURL},
		InitialAdvertisePeerURLs: []string{DefaultPeerURL},
		InitialClusterState:      "new",
		InitialClusterToken:      DefaultInitialClusterToken,
		SnapshotCount:            DefaultSnapshotCount,
		CompactHashCheckTime:     DefaultCompactHashCheckTime,
		HeartbeatInterval:        DefaultHeartbeatInterval,
		ElectionTimeout:          DefaultElectionTimeout,
		QuotaBackendBytes:        DefaultQuotaBackendBytes,
		MaxRequestBytes:          DefaultMaxRequestBytes,
		MaxTxnOps:                DefaultMaxTxnOps,
		MaxLearners:              membership.DefaultMaxLearners,
		StrictReconfigCheck:      true,
		TLSMinVersion:            tlsconfig.DefaultMinVersion,
		AuditLogMaxSize:          DefaultAuditLogMaxSize,
		AuditLogMaxBackups:       DefaultAuditLogMaxBackups,
	}
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid configuration")

// Validate checks the configuration the way etcd does before starting.
func (c *Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: --name must not be empty", ErrConfig)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: --data-dir must not be empty", ErrConfig)
	}
	if c.CorruptCheckTime < 0 {
		return fmt.Errorf("%w: --corrupt-check-time must not be negative", ErrConfig)
	}
	if err := c.Operations.validate(); err != nil {
		return err
	}
	if c.CompactHashCheckTime <= 0 {
		return fmt.Errorf("%w: --compact-hash-check-time must be >0 (set to %v)", ErrConfig, c.CompactHashCheckTime)
	}
	for flag, urls := range map[string][]string{
		"--listen-client-urls": c.ListenClientURLs, "--advertise-client-urls": c.AdvertiseClientURLs,
		"--listen-peer-urls": c.ListenPeerURLs, "--initial-advertise-peer-urls": c.InitialAdvertisePeerURLs,
	} {
		if err := checkURLs(flag, urls); err != nil {
			return err
		}
	}
	for flag, urls := range map[string][]string{"--listen-metrics-urls": c.ListenMetricsURLs, "--listen-client-http-urls": c.HTTP.ListenClientHTTPURLs} {
		if len(urls) > 0 {
			if err := checkURLs(flag, urls); err != nil {
				return err
			}
		}
	}
	if c.InitialClusterState != "new" && c.InitialClusterState != "existing" {
		return fmt.Errorf("%w: --initial-cluster-state must be \"new\" or \"existing\", not %q", ErrConfig, c.InitialClusterState)
	}
	if c.HeartbeatInterval <= 0 || c.ElectionTimeout < 5*c.HeartbeatInterval {
		return fmt.Errorf("%w: --election-timeout[%v] should be at least 5 times as --heartbeat-interval[%v]",
			ErrConfig, c.ElectionTimeout, c.HeartbeatInterval)
	}
	if c.ElectionTimeout > 50*time.Second {
		return fmt.Errorf("%w: --election-timeout is longer than 50000 ms", ErrConfig)
	}
	if c.MaxRequestBytes <= 0 || c.MaxTxnOps <= 0 || c.SnapshotCount == 0 {
		return fmt.Errorf("%w: --max-request-bytes, --max-txn-ops and --snapshot-count must be positive", ErrConfig)
	}
	if c.BcryptCost != 0 && (c.BcryptCost < auth.MinBcryptCost || c.BcryptCost > auth.MaxBcryptCost) {
		return fmt.Errorf("%w: --bcrypt-cost must be between %d and %d, not %d", ErrConfig, auth.MinBcryptCost, auth.MaxBcryptCost, c.BcryptCost)
	}
	if c.AuthTokenTTL < 0 {
		return fmt.Errorf("%w: --auth-token-ttl must not be negative", ErrConfig)
	}
	if c.MaxLearners < 0 {
		return fmt.Errorf("%w: --max-learners must not be negative", ErrConfig)
	}
	if c.AuditLogMaxSize < 0 || c.AuditLogMaxBackups < 0 || c.MaxClientConnections < 0 || c.MaxWatchers < 0 {
		return fmt.Errorf("%w: --audit-log-max-size, --audit-log-max-backups, --max-client-connections and --max-watchers-per-stream must not be negative", ErrConfig)
	}
	if c.WatchProgressNotifyInterval < 0 || c.GRPCKeepAliveMinTime < 0 || c.GRPCKeepAliveInterval < 0 ||
		c.GRPCKeepAliveTimeout < 0 || c.WarningUnaryRequestDuration < 0 || c.WarningApplyDuration < 0 {
		return fmt.Errorf("%w: --watch-progress-notify-interval, --grpc-keepalive-*, --warning-unary-request-duration and --warning-apply-duration must not be negative", ErrConfig)
	}
	if c.QuotaBackendBytes < 0 {
		return fmt.Errorf("%w: --quota-backend-bytes must not be negative", ErrConfig)
	}
	if _, err := c.tlsOptions(); err != nil {
		return err
	}
	_, err := c.initialMembers()
	return err
}

func checkURLs(flag string, urls []string) error {
	if len(urls) == 0 {
		return fmt.Errorf("%w: %s must not be empty", ErrConfig, flag)
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix" && u.Scheme != "unixs") {
			return fmt.Errorf("%w: %s: %q is not a URL of the form http://host:port", ErrConfig, flag, s)
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("%w: %s: URL %q must not have a path", ErrConfig, flag, s)
		}
	}
	return nil
}

// initialMember is one entry of --initial-cluster.
type initialMember struct {
	Name     string
	PeerURLs []string
}

// initialMembers parses --initial-cluster (defaulting, as etcd does, to this
// member alone) and checks this member's advertised peer URLs appear in it.
func (c *Config) initialMembers() ([]initialMember, error) {
	spec := c.InitialCluster
	if spec == "" {
		spec = c.Name + "=" + strings.Join(c.InitialAdvertisePeerURLs, ","+c.Name+"=")
	}
	byName := map[string][]string{}
	var order []string
	for _, part := range strings.Split(spec, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("%w: --initial-cluster: %q is not name=peerURL", ErrConfig, part)
		}
		if err := checkURLs("--initial-cluster", []string{u}); err != nil {
			return nil, err
		}
		if _, seen := byName[name]; !seen {
			order = append(order, name)
		}
		byName[name] = append(byName[name], u)
	}
	mine := append([]string(nil), byName[c.Name]...)
	adv := append([]string(nil), c.InitialAdvertisePeerURLs...)
	sort.Strings(mine)
	sort.Strings(adv)
	if strings.Join(mine, ",") != strings.Join(adv, ",") {
		return nil, fmt.Errorf("%w: --initial-cluster has %s=%v but --initial-advertise-peer-urls is %v",
			ErrConfig, c.Name, mine, adv)
	}
	out := make([]initialMember, 0, len(order))
	for _, name := range order {
		out = append(out, initialMember{Name: name, PeerURLs: byName[name]})
	}
	return out, nil
}
