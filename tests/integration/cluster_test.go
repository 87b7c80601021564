// Package integration drives in-process synod clusters (real members, real
// gRPC on loopback, real Pebble on disk) through the real clientv3 client.
package integration

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/synod-db/synod/server"
)

// cluster is an in-process synod cluster for tests.
type cluster struct {
	t       testing.TB
	cfgs    []server.Config
	members []*server.Member
}

// freePorts reserves n loopback ports. The listeners are closed before the
// members bind them; on a test machine nothing else races for them.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// newCluster starts an n-member cluster; mutate adjusts every member's config.
func newCluster(t testing.TB, n int, mutate func(*server.Config)) *cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	dir := t.TempDir()
	var initial []string
	for i := 0; i < n; i++ {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i+1]))
	}
	c := &cluster{t: t}
	for i := 0; i < n; i++ {
		cfg := server.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.DataDir = filepath.Join(dir, cfg.Name)
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
		cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs = []string{peer}, []string{peer}
		cfg.InitialCluster = strings.Join(initial, ",")
		// Fast enough for quick elections, slow enough that a loaded
		// 2-core CI machine (other test packages run beside this one) does
		// not see leadership churn that no test is about.
		cfg.HeartbeatInterval = 25 * time.Millisecond
		cfg.ElectionTimeout = 300 * time.Millisecond
		if mutate != nil {
			mutate(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	c.members = make([]*server.Member, n)
	for i := range c.cfgs {
		c.start(i)
	}
	t.Cleanup(c.stopAll)
	c.waitLeader()
	return c
}

func (c *cluster) start(i int) {
	c.t.Helper()
	m, err := server.New(c.cfgs[i], testLogger())
	if err != nil {
		c.t.Fatalf("start member %d: %v", i, err)
	}
	m.Start()
	c.members[i] = m
}

func (c *cluster) stop(i int) {
	if c.members[i] != nil {
		c.members[i].Stop()
		c.members[i] = nil
	}
}

func (c *cluster) stopAll() {
	for i := range c.members {
		c.stop(i)
	}
}

func (c *cluster) endpoint(i int) string {
	return strings.TrimPrefix(c.cfgs[i].AdvertiseClientURLs[0], "http://")
}

// client returns a clientv3 client for the given members (all if none).
func (c *cluster) client(idx ...int) *clientv3.Client {
	c.t.Helper()
	if len(idx) == 0 {
		for i := range c.cfgs {
			idx = append(idx, i)
		}
	}
	var eps []string
	for _, i := range idx {
		eps = append(eps, c.endpoint(i))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// waitLeader waits until every running member agrees on one leader and
// returns its index.
func (c *cluster) waitLeader() int {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		for _, m := range c.members {
			if m == nil {
				continue
			}
			st, err := m.Status(context.Background())
			if err != nil || st.Leader == 0 || (lead != 0 && st.Leader != lead) {
				agree = false
				break
			}
			lead = st.Leader
		}
		if agree && lead != 0 {
			for i, m := range c.members {
				if m != nil && m.ID() == lead {
					return i
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no agreed leader within 10s")
	return -1
}

// testLogger logs members' messages to stderr when SYNOD_TEST_LOG is set
// (to a level: debug, info, warn, error).
func testLogger() *slog.Logger {
	lvl, ok := os.LookupEnv("SYNOD_TEST_LOG")
	if !ok {
		return nil
	}
	var l slog.Level
	_ = l.UnmarshalText([]byte(lvl))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}
