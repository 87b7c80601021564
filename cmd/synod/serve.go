package main

import (
	"context"
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

	"go.etcd.io/etcd/pkg/v3/flags"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/server"
)

const version = "0.1.0"

func apiVersion() string { return server.Version }

// serveFlags binds etcd's flag names to a server.Config.
type serveFlags struct {
	cfg          server.Config
	urls         urlFlags
	heartbeatMS  uint
	electionMS   uint
	authTokenTTL uint
	authToken    string
	log          logFlags
	gates        featureGates
	timerSlack   time.Duration
	clusterState *flags.SelectiveStringValue
	configFile   string
	printVersion bool
	tuning       tuningFlags
	inert        inertFlags
	discovery    discoveryFlags
	set          map[string]bool // flags given explicitly (command line, environment or config file)
	gateNotes    []string        // gates set that have no effect in synod
	lines        []logLine       // to log once the logger exists
}

func newServeFlagSet(stderr io.Writer) (*flag.FlagSet, *serveFlags) {
	f := &serveFlags{cfg: server.NewConfig(), set: map[string]bool{}}
	fs := flag.NewFlagSet("synod serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), serveUsage) }
	c := &f.cfg
	fs.StringVar(&f.configFile, "config-file", "", "Path to the server configuration file (etcd's YAML). Note that if a configuration file is provided, other command line flags and environment variables will be ignored.")
	fs.BoolVar(&f.printVersion, "version", false, "Print the version and exit.")
	fs.StringVar(&c.Name, "name", c.Name, "Human-readable name for this member.")
	c.DataDir = ""
	fs.StringVar(&c.DataDir, "data-dir", "", "Path to the data directory (default ${name}.synod).")
	f.urls.bind(fs)
	fs.StringVar(&c.InitialCluster, "initial-cluster", "", "Initial cluster configuration for bootstrapping (name=peerURL,...). Defaults to this member alone.")
	f.clusterState = flags.NewSelectiveStringValue("new", "existing")
	fs.Var(f.clusterState, "initial-cluster-state", "Initial cluster state ('new' or 'existing').")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", c.InitialClusterToken, "Initial cluster token for the cluster during bootstrap.")
	fs.Uint64Var(&c.SnapshotCount, "snapshot-count", c.SnapshotCount, "Number of committed transactions to trigger a snapshot to disk.")
	fs.UintVar(&f.heartbeatMS, "heartbeat-interval", uint(c.HeartbeatInterval/time.Millisecond), "Time (in milliseconds) of a heartbeat interval.")
	fs.UintVar(&f.electionMS, "election-timeout", uint(c.ElectionTimeout/time.Millisecond), "Time (in milliseconds) for an election to timeout.")
	fs.Int64Var(&c.QuotaBackendBytes, "quota-backend-bytes", c.QuotaBackendBytes, "Raise alarms when backend size exceeds the given quota.")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", c.MaxRequestBytes, "Maximum client request size in bytes the server will accept.")
	fs.IntVar(&c.MaxTxnOps, "max-txn-ops", c.MaxTxnOps, "Maximum number of operations permitted in a transaction.")
	fs.DurationVar(&c.CorruptCheckTime, "corrupt-check-time", 0, "Duration of time between cluster corruption check passes (0: off).")
	fs.DurationVar(&c.CompactHashCheckTime, "compact-hash-check-time", c.CompactHashCheckTime, "Duration of time between leader checks followers compaction hashes (with --feature-gates=CompactHashCheck=true).")
	fs.DurationVar(&f.timerSlack, "timer-slack", defaultTimerSlack, "How late the kernel may fire this process's timers to batch wake-ups (Linux; 0: the kernel's 50us). A synod flag; see docs/performance.md.")
	fs.Var(&f.gates, "feature-gates", "A set of key=value pairs for etcd's feature gates; synod implements InitialCorruptCheck=true|false and CompactHashCheck=true|false (both default false) and accepts etcd's other gates without effect.")
	fs.BoolVar(&c.EnablePprof, "enable-pprof", false, "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"")
	fs.IntVar(&c.MaxLearners, "max-learners", c.MaxLearners, "Sets the maximum number of learners that can be available in the cluster membership.")
	fs.BoolVar(&c.StrictReconfigCheck, "strict-reconfig-check", c.StrictReconfigCheck, "Reject reconfiguration requests that would cause quorum loss.")
	fs.IntVar(&c.BcryptCost, "bcrypt-cost", auth.DefaultBcryptCost, "Specify bcrypt algorithm cost factor for auth password hashing.")
	fs.UintVar(&f.authTokenTTL, "auth-token-ttl", uint(server.DefaultAuthTokenTTL/time.Second), "The lifetime in seconds of the auth token.")
	fs.StringVar(&f.authToken, "auth-token", "simple", "Accepted for etcd compatibility ('simple' or 'jwt,...'); synod always issues its own signed tokens (docs/security.md).")
	bindTLSFlags(fs, c)
	bindHTTPFlags(fs, &c.HTTP)
	bindAuditAndLimitFlags(fs, c)
	bindOperationFlags(fs, c)
	f.log.bind(fs)
	f.tuning.bind(fs, c)
	f.inert.bind(fs)
	f.discovery.bind(fs)
	bindTracingFlags(fs, &c.Tracing)
	bindConsulFlags(fs, &c.Consul)
	bindDNSFlags(fs, &c.DNS)
	return fs, f
}

// logLine is a line parsing has to say, logged once the logger exists.
type logLine struct {
	level slog.Level
	msg   string
	args  []any
}

// serveUsage is printed after a flag error, as etcd prints its usage line.
const serveUsage = "Usage: synod serve [flags]  (etcd's flags; 'synod serve --help' lists them, docs/configuration.md explains each)"

// errUsage marks an error the flag package has already printed.
var errUsage = errors.New("usage error")

// errVersion stops parsing at --version, as etcd prints its version and exits.
var errVersion = errors.New("version requested")

// parse reads args, then either the configuration file (--config-file or
// ETCD_CONFIG_FILE), ignoring every other flag and variable as etcd does,
// or the environment for every flag not on the command line: SYNOD_<FLAG>
// or etcd's own ETCD_<FLAG>. It returns the flag set the values came from.
func (f *serveFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%q is not a valid flag", fs.Arg(0))
	}
	if f.printVersion {
		return errVersion
	}
	if f.configFile == "" {
		f.configFile = lookupEnv("CONFIG_FILE")
	}
	if f.configFile != "" {
		return f.fromConfigFile(fs.Output())
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if err := f.fromEnv(fs); err != nil {
		return err
	}
	// As etcd: listening on chosen client URLs means advertising them too.
	if f.set["listen-client-urls"] && !f.set["advertise-client-urls"] {
		return errors.New("--advertise-client-urls is required when --listen-client-urls is set explicitly")
	}
	return f.finish()
}

// finish turns the parsed values into the Config and checks them.
func (f *serveFlags) finish() error {
	c := &f.cfg
	if c.DataDir == "" {
		c.DataDir = c.Name + ".synod" // as etcd's ${name}.etcd
	}
	f.urls.apply(c)
	c.InitialClusterState = f.clusterState.String()
	c.HeartbeatInterval = time.Duration(f.heartbeatMS) * time.Millisecond
	c.ElectionTimeout = time.Duration(f.electionMS) * time.Millisecond
	c.AuthTokenTTL = time.Duration(f.authTokenTTL) * time.Second
	if err := checkRaftTimes(f.heartbeatMS, f.electionMS); err != nil {
		return err
	}
	if t, _, _ := strings.Cut(f.authToken, ","); t != "simple" && t != "jwt" {
		return fmt.Errorf("--auth-token: unknown token type %q (want simple or jwt)", t)
	}
	if err := checkTimerSlack(f.timerSlack); err != nil {
		return err
	}
	for _, check := range []func() error{f.log.check, func() error { return f.discovery.check(c.InitialCluster) }, c.Tracing.Validate, f.tuning.check, func() error { return checkConsulFlags(c.Consul) }, func() error { return checkDNSFlags(c.DNS) }} {
		if err := check(); err != nil {
			return err
		}
	}
	f.gateNotes = f.gates.apply(c)
	notes := append(f.inert.notes(f.set), f.tuning.notes(f.set)...)
	if c.UnsafeNoFsync {
		notes = append(notes, "--unsafe-no-fsync: writes are not fsynced; a crash or power loss can lose acknowledged writes. Never use it in production")
	}
	for _, n := range append(notes, f.gateNotes...) {
		f.lines = append(f.lines, logLine{level: slog.LevelWarn, msg: n})
	}
	return nil
}

// checkRaftTimes checks --heartbeat-interval and --election-timeout with
// etcd's messages.
func checkRaftTimes(tick, election uint) error {
	switch {
	case tick == 0:
		return fmt.Errorf("--heartbeat-interval must be >0 (set to %dms)", tick)
	case election == 0:
		return fmt.Errorf("--election-timeout must be >0 (set to %dms)", election)
	case 5*tick > election:
		return fmt.Errorf("--election-timeout[%vms] should be at least as 5 times as --heartbeat-interval[%vms]", election, tick)
	case election > 50000:
		return fmt.Errorf("--election-timeout[%vms] is too long, and should be set less than %vms", election, 50000)
	}
	return nil
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs, f := newServeFlagSet(stderr)
	err := f.parse(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.PrintDefaults()
		return 0
	case errors.Is(err, errVersion):
		fmt.Fprintf(stdout, "synod version %s (etcd API %s)\n", version, apiVersion())
		return 0
	case errors.Is(err, errUsage):
		return 2 // the flag package printed the error and the usage, as etcd's
	case err != nil:
		logStartupError(stderr, err)
		return 1
	}
	logger, closeLog, err := f.log.newLogger(stderr)
	if err != nil {
		logStartupError(stderr, err)
		return 1
	}
	defer closeLog()
	if err := applyRuntimeSettings(f.timerSlack); err != nil {
		logger.Warn("runtime settings not applied (timer slack, GODEBUG); the defaults apply", "timer-slack", f.timerSlack, "err", err)
	}
	for _, l := range f.lines {
		logger.Log(context.Background(), l.level, l.msg, l.args...)
	}
	f.discovery.apply(&f.cfg, logger)
	return serveMember(f.cfg, logger, stderr)
}

// serveMember runs the member until a signal or its end.
func serveMember(cfg server.Config, logger *slog.Logger, stderr io.Writer) int {
	m, err := server.New(cfg, logger)
	if err != nil {
		warnDiscoveryFailure(logger, err)
		fmt.Fprintf(stderr, "synod serve: %v\n", err)
		return 1
	}
	m.Start()
	if err := m.StartConsul(); err != nil {
		m.Stop()
		fmt.Fprintf(stderr, "synod serve: %v\n", err)
		return 1
	}
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
