package etcdyaml

import "time"

// configYAML mirrors the shape and Go types of etcd's embed.configYAML, so
// that type errors name the same struct fields (configYAML.Config.<key>).
type configYAML struct {
	Config
	configJSON
}

// Config holds the file's keys that etcd decodes straight into its
// embed.Config, with etcd's Go types.
type Config struct {
	Name                   string        `json:"name"`
	Dir                    string        `json:"data-dir"`
	WalDir                 string        `json:"wal-dir"`
	SnapshotCount          uint64        `json:"snapshot-count"`
	SnapshotCatchUpEntries uint64        `json:"snapshot-catchup-entries"`
	MaxSnapFiles           uint          `json:"max-snapshots"`
	MaxWalFiles            uint          `json:"max-wals"`
	TickMs                 uint          `json:"heartbeat-interval"`
	ElectionMs             uint          `json:"election-timeout"`
	InitialElectionTick    bool          `json:"initial-election-tick-advance"`
	BackendBatchInterval   time.Duration `json:"backend-batch-interval"`
	BackendBatchLimit      int           `json:"backend-batch-limit"`
	BackendFreelistType    string        `json:"backend-bbolt-freelist-type"`
	QuotaBackendBytes      int64         `json:"quota-backend-bytes"`
	MaxTxnOps              uint          `json:"max-txn-ops"`
	MaxRequestBytes        uint          `json:"max-request-bytes"`
	MaxConcurrentStreams   uint32        `json:"max-concurrent-streams"`
	SelfSignedCertValidity uint          `json:"self-signed-cert-validity"`
	CipherSuites           []string      `json:"cipher-suites"`
	TLSMinVersion          string        `json:"tls-min-version"`
	TLSMaxVersion          string        `json:"tls-max-version"`
	ClusterState           string        `json:"initial-cluster-state"`
	DNSCluster             string        `json:"discovery-srv"`
	DNSClusterServiceName  string        `json:"discovery-srv-name"`
	DiscoveryCfg           discovery     `json:"discovery-config"`
	InitialCluster         string        `json:"initial-cluster"`
	InitialClusterToken    string        `json:"initial-cluster-token"`
	StrictReconfigCheck    bool          `json:"strict-reconfig-check"`
	AutoCompactionMode     string        `json:"auto-compaction-mode"`
	AutoCompactionRetain   string        `json:"auto-compaction-retention"`
	GRPCKeepAliveMinTime   time.Duration `json:"grpc-keepalive-min-time"`
	GRPCKeepAliveInterval  time.Duration `json:"grpc-keepalive-interval"`
	GRPCKeepAliveTimeout   time.Duration `json:"grpc-keepalive-timeout"`
	SocketOpts             socketOpts    `json:"socket-options"`
	PreVote                bool          `json:"pre-vote"`
	AuthToken              string        `json:"auth-token"`
	BcryptCost             uint          `json:"bcrypt-cost"`
	AuthTokenTTL           uint          `json:"auth-token-ttl"`
	CorruptCheckTime       time.Duration `json:"corrupt-check-time"`
	CompactHashCheckTime   time.Duration `json:"compact-hash-check-time"`
	CompactionBatchLimit   int           `json:"compaction-batch-limit"`
	CompactionSleep        time.Duration `json:"compaction-sleep-interval"`
	WatchProgressNotify    time.Duration `json:"watch-progress-notify-interval"`
	WarningApplyDuration   time.Duration `json:"warning-apply-duration"`
	BootstrapDefragMB      uint          `json:"bootstrap-defrag-threshold-megabytes"`
	WarningUnaryRequest    time.Duration `json:"warning-unary-request-duration"`
	MaxLearners            int           `json:"max-learners"`
	ForceNewCluster        bool          `json:"force-new-cluster"`
	EnablePprof            bool          `json:"enable-pprof"`
	Metrics                string        `json:"metrics"`
	ListenMetricsUrlsJSON  string        `json:"listen-metrics-urls"`
	EnableTracing          bool          `json:"enable-distributed-tracing"`
	TracingAddress         string        `json:"distributed-tracing-address"`
	TracingServiceName     string        `json:"distributed-tracing-service-name"`
	TracingInstanceID      string        `json:"distributed-tracing-instance-id"`
	TracingSamplingRate    int           `json:"distributed-tracing-sampling-rate"`
	Logger                 string        `json:"logger"`
	LogLevel               string        `json:"log-level"`
	LogFormat              string        `json:"log-format"`
	LogOutputs             []string      `json:"log-outputs"`
	EnableLogRotation      bool          `json:"enable-log-rotation"`
	LogRotationConfigJSON  string        `json:"log-rotation-config-json"`
	EnableGRPCGateway      bool          `json:"enable-grpc-gateway"`
	UnsafeNoFsync          bool          `json:"unsafe-no-fsync"`
	DowngradeCheckTime     time.Duration `json:"downgrade-check-time"`
	MemoryMlock            bool          `json:"memory-mlock"`
	V2Deprecation          string        `json:"v2-deprecation"`
}

// configJSON holds the keys etcd translates before use: URL lists as
// comma-separated strings, the two transport security sections and the
// feature gates.
type configJSON struct {
	ListenPeerURLs       string         `json:"listen-peer-urls"`
	ListenClientURLs     string         `json:"listen-client-urls"`
	ListenClientHTTPURLs string         `json:"listen-client-http-urls"`
	AdvertisePeerURLs    string         `json:"initial-advertise-peer-urls"`
	AdvertiseClientURLs  string         `json:"advertise-client-urls"`
	CORSJSON             string         `json:"cors"`
	HostWhitelistJSON    string         `json:"host-whitelist"`
	ClientSecurityJSON   securityConfig `json:"client-transport-security"`
	PeerSecurityJSON     securityConfig `json:"peer-transport-security"`
	FeatureGatesJSON     string         `json:"feature-gates"`
}

// securityConfig is one transport security section.
type securityConfig struct {
	CertFile            string   `json:"cert-file"`
	KeyFile             string   `json:"key-file"`
	ClientCertFile      string   `json:"client-cert-file"`
	ClientKeyFile       string   `json:"client-key-file"`
	CertAuth            bool     `json:"client-cert-auth"`
	TrustedCAFile       string   `json:"trusted-ca-file"`
	AutoTLS             bool     `json:"auto-tls"`
	AllowedCNs          []string `json:"allowed-cn"`
	AllowedHostnames    []string `json:"allowed-hostname"`
	SkipClientSANVerify bool     `json:"skip-client-san-verification,omitempty"`
}

// socketOpts is the socket-options section.
type socketOpts struct {
	ReusePort    bool `json:"reuse-port"`
	ReuseAddress bool `json:"reuse-address"`
}

// discovery is the discovery-config section (the fields synod reads).
type discovery struct {
	Client struct {
		Endpoints        []string      `json:"endpoints"`
		RequestTimeout   time.Duration `json:"request-timeout"`
		DialTimeout      time.Duration `json:"dial-timeout"`
		KeepAliveTime    time.Duration `json:"keepalive-time"`
		KeepAliveTimeout time.Duration `json:"keepalive-timeout"`
		Secure           struct {
			Cert               string `json:"cert"`
			Key                string `json:"key"`
			Cacert             string `json:"cacert"`
			InsecureTransport  bool   `json:"insecure-transport"`
			InsecureSkipVerify bool   `json:"insecure-skip-tls-verify"`
		} `json:"secure"`
		Auth struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auth"`
	} `json:"client"`
	Token string `json:"token"`
}
