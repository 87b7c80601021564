package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/synod-db/synod/server"
)

// devMember is one member of the development cluster, on etcd's Procfile
// ports.
type devMember struct {
	name       string
	clientPort int
	peerPort   int
	consulPort int // Consul's HTTP API: 8500 (Consul's port) and the next two
}

var devMembers = []devMember{
	{"infra1", 2379, 12380, 8500},
	{"infra2", 22379, 22380, 8501},
	{"infra3", 32379, 32380, 8502},
}

// devConfigs returns the three members' configurations under dataDir.
func devConfigs(dataDir string) []server.Config {
	var initial []string
	for _, d := range devMembers {
		initial = append(initial, fmt.Sprintf("%s=http://127.0.0.1:%d", d.name, d.peerPort))
	}
	var out []server.Config
	for _, d := range devMembers {
		c := server.NewConfig()
		c.Name = d.name
		c.DataDir = filepath.Join(dataDir, d.name)
		client := fmt.Sprintf("http://127.0.0.1:%d", d.clientPort)
		peer := fmt.Sprintf("http://127.0.0.1:%d", d.peerPort)
		c.ListenClientURLs, c.AdvertiseClientURLs = []string{client}, []string{client}
		c.ListenPeerURLs, c.InitialAdvertisePeerURLs = []string{peer}, []string{peer}
		c.InitialCluster = strings.Join(initial, ",")
		c.InitialClusterToken = "etcd-cluster-1"
		c.Consul = server.ConsulConfig{ListenURL: fmt.Sprintf("http://127.0.0.1:%d", d.consulPort), Datacenter: defaultConsulDatacenter}
		c.DNS = devDNSConfig(d.consulPort)
		out = append(out, c)
	}
	return out
}

func runDev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("synod dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "Directory for the members' data (default: a temporary directory, removed on exit).")
	logLevel := fs.String("log-level", "warn", "Log level: debug, info, warn, error.")
	slack := fs.Duration("timer-slack", defaultTimerSlack, "How late the kernel may fire this process's timers to batch wake-ups (Linux; 0: the kernel's 50us).")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "synod dev: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "synod dev: %v\n", err)
		return 2
	}
	if err := checkTimerSlack(*slack); err != nil {
		fmt.Fprintf(stderr, "synod dev: %v\n", err)
		return 2
	}
	if err := applyRuntimeSettings(*slack); err != nil {
		logger.Warn("runtime settings not applied (timer slack, GODEBUG); the defaults apply", "err", err)
	}
	dir, cleanup := *dataDir, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "synod-dev-"); err != nil {
			fmt.Fprintf(stderr, "synod dev: %v\n", err)
			return 1
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	defer cleanup()
	var members []*server.Member
	stopAll := func() {
		for _, m := range members {
			m.Stop()
		}
	}
	for _, c := range devConfigs(dir) {
		m, err := server.New(c, logger)
		if err != nil {
			stopAll()
			fmt.Fprintf(stderr, "synod dev: %s: %v\n", c.Name, err)
			return 1
		}
		members = append(members, m)
	}
	var eps []string
	for _, m := range members {
		m.Start()
		if err := m.StartConsul(); err != nil {
			stopAll()
			fmt.Fprintf(stderr, "synod dev: %v\n", err)
			return 1
		}
	}
	for _, d := range devMembers {
		eps = append(eps, fmt.Sprintf("127.0.0.1:%d", d.clientPort))
	}
	fmt.Fprintf(stdout, "synod dev: 3-member cluster running; data in %s\n", dir)
	fmt.Fprintf(stdout, "endpoints: %s\n", strings.Join(eps, ","))
	fmt.Fprintf(stdout, "try: etcdctl --endpoints=%s put hello world\n", strings.Join(eps, ","))
	fmt.Fprintf(stdout, "press Ctrl-C to stop\n")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	code := 0
	select {
	case <-sig:
	case <-members[0].Done():
		code = 1
	case <-members[1].Done():
		code = 1
	case <-members[2].Done():
		code = 1
	}
	stopAll()
	fmt.Fprintln(stdout, "synod dev: stopped")
	return code
}
