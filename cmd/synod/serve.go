package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/server"
)

const version = "0.1.0"

func apiVersion() string { return server.Version }

// serveFlags binds etcd's flag names to a server.Config.
type serveFlags struct {
	cfg                             server.Config
	listenClient, advertiseClient   string
	listenPeer, initialAdvertisePer string
	listenMetrics                   string
	heartbeatMS, electionMS         uint
	authTokenTTL                    uint
	authToken                       string
	logLevel                        string
	gates                           featureGates
	timerSlack                      time.Duration
	gateNotes                       []string // gates set that have no effect in synod
}

func newServeFlagSet(stderr io.Writer) (*flag.FlagSet, *serveFlags) {
	f := &serveFlags{cfg: server.NewConfig()}
	fs := flag.NewFlagSet("synod serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &f.cfg
	fs.StringVar(&c.Name, "name", c.Name, "Human-readable name for this member.")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "Path to the data directory.")
	fs.StringVar(&f.listenClient, "listen-client-urls", server.DefaultClientURL, "List of URLs to listen on for client traffic.")
	fs.StringVar(&f.advertiseClient, "advertise-client-urls", server.DefaultClientURL, "List of this member's client URLs to advertise to the rest of the cluster.")
	fs.StringVar(&f.listenPeer, "listen-peer-urls", server.DefaultPeerURL, "List of URLs to listen on for peer traffic.")
	fs.StringVar(&f.initialAdvertisePer, "initial-advertise-peer-urls", server.DefaultPeerURL, "List of this member's peer URLs to advertise to the rest of the cluster.")
	fs.StringVar(&c.InitialCluster, "initial-cluster", "", "Initial cluster configuration for bootstrapping (name=peerURL,...). Defaults to this member alone.")
	fs.StringVar(&c.InitialClusterState, "initial-cluster-state", c.InitialClusterState, "Initial cluster state ('new' or 'existing').")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", c.InitialClusterToken, "Initial cluster token for the cluster during bootstrap.")
	fs.Uint64Var(&c.SnapshotCount, "snapshot-count", c.SnapshotCount, "Number of committed transactions to trigger a snapshot to disk.")
	fs.UintVar(&f.heartbeatMS, "heartbeat-interval", uint(c.HeartbeatInterval/time.Millisecond), "Time (in milliseconds) of a heartbeat interval.")
	fs.UintVar(&f.electionMS, "election-timeout", uint(c.ElectionTimeout/time.Millisecond), "Time (in milliseconds) for an election to timeout.")
	fs.Int64Var(&c.QuotaBackendBytes, "quota-backend-bytes", c.QuotaBackendBytes, "Raise alarms when backend size exceeds the given quota.")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", c.MaxRequestBytes, "Maximum client request size in bytes the server will accept.")
	fs.IntVar(&c.MaxTxnOps, "max-txn-ops", c.MaxTxnOps, "Maximum number of operations permitted in a transaction.")
	fs.StringVar(&f.listenMetrics, "listen-metrics-urls", "", "List of URLs to listen on for the metrics and health endpoints (they are served on the client URLs too).")
	fs.DurationVar(&c.CorruptCheckTime, "corrupt-check-time", 0, "Duration of time between cluster corruption check passes (0: off).")
	fs.DurationVar(&c.CompactHashCheckTime, "compact-hash-check-time", c.CompactHashCheckTime, "Duration of time between leader checks followers compaction hashes (with --feature-gates=CompactHashCheck=true).")
	fs.DurationVar(&f.timerSlack, "timer-slack", defaultTimerSlack, "How late the kernel may fire this process's timers to batch wake-ups (Linux; 0: the kernel's 50us). A synod flag; see docs/performance.md.")
	fs.Var(&f.gates, "feature-gates", "A set of key=value pairs for etcd's feature gates; synod implements InitialCorruptCheck=true|false and CompactHashCheck=true|false (both default false) and accepts etcd's other gates without effect.")
	fs.BoolVar(&c.EnablePprof, "enable-pprof", false, "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"")
	fs.IntVar(&c.MaxLearners, "max-learners", c.MaxLearners, "Sets the maximum number of learners that can be available in the cluster membership.")
	fs.BoolVar(&c.StrictReconfigCheck, "strict-reconfig-check", c.StrictReconfigCheck, "Reject reconfiguration requests that would cause quorum loss.")
	fs.StringVar(&f.logLevel, "log-level", "info", "Configures log level. Only supports debug, info, warn, error.")
	fs.IntVar(&c.BcryptCost, "bcrypt-cost", auth.DefaultBcryptCost, "Specify bcrypt algorithm cost factor for auth password hashing.")
	fs.UintVar(&f.authTokenTTL, "auth-token-ttl", uint(server.DefaultAuthTokenTTL/time.Second), "The lifetime in seconds of the auth token.")
	fs.StringVar(&f.authToken, "auth-token", "simple", "Accepted for etcd compatibility ('simple' or 'jwt,...'); synod always issues its own signed tokens (docs/security.md).")
	bindTLSFlags(fs, c)
	bindAuditAndLimitFlags(fs, c)
	bindOperationFlags(fs, c)
	return fs, f
}

// parse reads args, then fills every flag not given on the command line from
// the environment: SYNOD_<FLAG> (for example SYNOD_DATA_DIR), or etcd's own
// ETCD_<FLAG> so existing manifests carry over. The command line wins.
func (f *serveFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("'%s' is not a valid flag", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var err error
	fs.VisitAll(func(fl *flag.Flag) {
		if set[fl.Name] || err != nil {
			return
		}
		key := strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		for _, prefix := range []string{"SYNOD_", "ETCD_"} {
			if v, ok := os.LookupEnv(prefix + key); ok {
				if e := fl.Value.Set(v); e != nil {
					err = fmt.Errorf("invalid value %q for environment variable %s%s: %v", v, prefix, key, e)
				}
				return
			}
		}
	})
	if err != nil {
		return err
	}
	c := &f.cfg
	c.ListenClientURLs = splitURLs(f.listenClient)
	c.AdvertiseClientURLs = splitURLs(f.advertiseClient)
	c.ListenPeerURLs = splitURLs(f.listenPeer)
	c.InitialAdvertisePeerURLs = splitURLs(f.initialAdvertisePer)
	c.ListenMetricsURLs = splitURLs(f.listenMetrics)
	c.HeartbeatInterval = time.Duration(f.heartbeatMS) * time.Millisecond
	c.AuthTokenTTL = time.Duration(f.authTokenTTL) * time.Second
	if t, _, _ := strings.Cut(f.authToken, ","); t != "simple" && t != "jwt" {
		return fmt.Errorf("--auth-token: unknown token type %q (want simple or jwt)", t)
	}
	c.ElectionTimeout = time.Duration(f.electionMS) * time.Millisecond
	if err := checkTimerSlack(f.timerSlack); err != nil {
		return err
	}
	f.gateNotes = f.gates.apply(c)
	return nil
}

func splitURLs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q (debug, info, warn, error)", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func runServe(args []string, _, stderr io.Writer) int {
	fs, f := newServeFlagSet(stderr)
	if err := f.parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "synod serve: %v\n", err)
		return 2
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "synod serve: %v\n", err)
		return 2
	}
	if err := applyRuntimeSettings(f.timerSlack); err != nil {
		logger.Warn("runtime settings not applied (timer slack, GODEBUG); the defaults apply", "timer-slack", f.timerSlack, "err", err)
	}
	for _, note := range f.gateNotes {
		logger.Warn(note)
	}
	m, err := server.New(f.cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "synod serve: %v\n", err)
		return 1
	}
	m.Start()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		logger.Info("received signal; shutting down", "signal", s.String())
		m.Stop()
		return 0
	case <-m.Done():
		err := m.Err()
		m.Stop()
		if m.Removed() {
			// As etcd: a removed member stops for good, and says why.
			fmt.Fprintln(stderr, "synod serve: the member has been permanently removed from the cluster")
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "synod serve: %v\n", err)
			return 1
		}
		return 0
	}
}
