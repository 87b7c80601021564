package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.uber.org/zap"

	"github.com/synod-db/synod/discovery/dnstest"
	"github.com/synod-db/synod/internal/testpki"
)

// startDiscovered starts n members of kind that name no initial cluster:
// flags (and, for member i, peer(i, port) as its advertised peer URL) tell
// them how to find each other. They start together, as discovery needs,
// once every peer(i, port) has been called.
func startDiscovered(t *testing.T, kind string, n int, peer func(i, port int) string, flags ...string) *Cluster {
	t.Helper()
	requireKind(t, kind)
	dir := t.TempDir()
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, Kind: kind}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		c.stopAll()
	})
	for i := 0; i < n; i++ {
		m := &Member{Index: i, Name: fmt.Sprintf("m%d", i), ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL: peer(i, ports[2*i+1]), Endpoint: fmt.Sprintf("127.0.0.1:%d", ports[2*i])}
		m.DataDir, m.LogPath = filepath.Join(dir, m.Name+".data"), filepath.Join(dir, m.Name+".log")
		args := append([]string{"--name=" + m.Name, "--data-dir=" + m.DataDir,
			"--listen-client-urls=" + m.ClientURL, "--advertise-client-urls=" + m.ClientURL,
			fmt.Sprintf("--listen-peer-urls=%s://127.0.0.1:%d", strings.Split(m.PeerURL, ":")[0], ports[2*i+1]),
			"--initial-advertise-peer-urls=" + m.PeerURL}, flags...)
		m.Bin, m.Args = etcdBin, args
		if kind == "synod" {
			m.Bin, m.Args = synodBin, append([]string{"serve"}, args...)
		}
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// waitFormed waits for every member and checks they form one cluster whose
// ID is the one etcd's membership code derives for their advertised peer
// URLs and token.
func waitFormed(t *testing.T, c *Cluster, token string) {
	t.Helper()
	var initial []string
	for _, m := range c.Members {
		if err := c.waitMemberReady(m, startTimeout); err != nil {
			t.Fatal(err)
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	urlsmap, err := types.NewURLsMap(strings.Join(initial, ","))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := membership.NewClusterFromURLsMap(zap.NewNop(), token, urlsmap)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := m.client(t).MemberList(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.ClusterId != uint64(cl.ID()) || len(resp.Members) != len(c.Members) {
			t.Errorf("%s %s: cluster %x with %d members, want %x with %d", c.Kind, m.Name, resp.Header.ClusterId, len(resp.Members), uint64(cl.ID()), len(c.Members))
		}
	}
}

// refusedMessage waits for a member that must not start to exit, and
// returns the error of its warning "failed to bootstrap; discovery token
// was already used" (etcd's, which synod logs too).
func refusedMessage(t *testing.T, m *Member) string {
	t.Helper()
	if err := waitFor(30*time.Second, 50*time.Millisecond, func() (bool, error) { return !m.Running(), nil }); err != nil {
		t.Fatalf("%s still running: %v\n%s", m.Name, err, tail(m.LogText(), 20))
	}
	for _, line := range strings.Split(m.LogText(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "failed to bootstrap; discovery token was already used" {
			return fmt.Sprint(rec["error"])
		}
	}
	t.Fatalf("%s: no error in its log:\n%s", m.Name, tail(m.LogText(), 20))
	return ""
}

func localPeer(_, port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }

// enableRootAuth turns auth on with a root user and returns a client
// logged in as root.
func enableRootAuth(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := newClient(t, endpoint)
	for _, step := range []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Username: "root", Password: "rootpw",
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

// Three synod members bootstrap through the v3 discovery service, run by a
// real etcd and by synod with auth on (--discovery-user and
// --discovery-password); a fourth with the same token is refused as etcd
// refuses it (the message compared with etcd members' own, live).
func TestDiscoveryV3Service(t *testing.T) {
	for _, svcKind := range kinds() {
		t.Run("service="+svcKind, func(t *testing.T) {
			svc := startCluster(t, svcKind, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := enableRootAuth(t, svc.Members[0].Endpoint).Put(ctx, "/_etcd/registry/tok/_config/size", "3"); err != nil {
				t.Fatal(err)
			}
			flags := []string{"--discovery-endpoints=" + svc.Members[0].Endpoint, "--discovery-token=tok",
				"--discovery-user=root", "--discovery-password=rootpw"}
			waitFormed(t, startDiscovered(t, "synod", 3, localPeer, flags...), "tok")
			refused := map[string]string{}
			for _, kind := range kinds() {
				if kind == "etcd" && etcdBin == "" {
					continue
				}
				c := startDiscovered(t, kind, 1, localPeer, flags...)
				refused[kind] = refusedMessage(t, c.Members[0])
			}
			want := "failed to join discovery cluster (discovery: cluster is full)"
			if e, ok := refused["etcd"]; ok && e != want {
				t.Errorf("etcd says %q, the test expects %q", e, want)
			}
			if refused["synod"] != want {
				t.Errorf("synod: a fourth member is refused with %q, want etcd's %q", refused["synod"], want)
			}
		})
	}
}

// Three synod processes find each other in DNS SRV records served by the
// test (SYNOD_TEST_DNS_SERVER), under names only that server knows. etcd
// has no way to use another DNS server, so this runs on synod only.
func TestDiscoverySRVProcesses(t *testing.T) {
	requireKind(t, "synod")
	d := dnstest.Start(t)
	t.Setenv("SYNOD_TEST_DNS_SERVER", d.Addr())
	var targets []dnstest.Target
	c := startDiscovered(t, "synod", 3, func(i, port int) string {
		host := fmt.Sprintf("m%d.synod.test", i)
		d.SetA(host, "127.0.0.1")
		targets = append(targets, dnstest.Target{Host: host, Port: uint16(port)})
		if i == 2 {
			d.SetSRV("_etcd-server-blue._tcp.synod.test", targets...)
		}
		return fmt.Sprintf("http://%s:%d", host, port)
	}, "--discovery-srv=synod.test", "--discovery-srv-name=blue", "--initial-cluster-token=srv")
	waitFormed(t, c, "srv")
}

// A discovery service that cannot be reached is retried, as etcd retries
// it (forever, backing off), saying so in the log; the member never serves.
func TestDiscoveryV3Unreachable(t *testing.T) {
	ports, err := freePorts(1) // closed again: nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			c := startDiscovered(t, kind, 1, localPeer, fmt.Sprintf("--discovery-endpoints=127.0.0.1:%d", ports[0]),
				"--discovery-token=x", "--discovery-dial-timeout=100ms", "--discovery-request-timeout=200ms")
			m := c.Members[0]
			err := waitFor(20*time.Second, 50*time.Millisecond, func() (bool, error) {
				if !m.Running() {
					return false, fmt.Errorf("exited: %v", m.exitStatus())
				}
				return strings.Contains(m.LogText(), `"msg":"retry connecting to discovery service"`), nil
			})
			if err != nil {
				t.Fatalf("%s: no retry logged: %v\n%s", kind, err, tail(m.LogText(), 20))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if _, err := m.client(t).Get(ctx, "x"); err == nil {
				t.Errorf("%s serves while discovery has not finished", kind)
			}
		})
	}
}

// A domain with no SRV records is refused as etcd refuses it: the fatal
// "discovery failed" line with the lookups' errors (both use Go's resolver
// with the system's configuration, so the texts match, compared live).
func TestDiscoverySRVNoRecords(t *testing.T) {
	got := map[string]string{}
	for _, kind := range kinds() {
		if kind == "etcd" && etcdBin == "" {
			continue
		}
		c := startDiscovered(t, kind, 1, localPeer, "--discovery-srv=synod.invalid")
		m := c.Members[0]
		if err := waitFor(30*time.Second, 50*time.Millisecond, func() (bool, error) { return !m.Running(), nil }); err != nil {
			t.Fatalf("%s still running: %v", kind, err)
		}
		for _, line := range strings.Split(m.LogText(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["level"] == "fatal" && rec["msg"] == "discovery failed" {
				got[kind] = fmt.Sprint(rec["error"])
			}
		}
		if !strings.HasPrefix(got[kind], "error setting up initial cluster: error querying DNS SRV records for _etcd-server-ssl") {
			t.Errorf("%s: discovery failed with %q\n%s", kind, got[kind], tail(m.LogText(), 10))
		}
	}
	if e, ok := got["etcd"]; ok && got["synod"] != e {
		t.Errorf("synod: %q\netcd:  %q", got["synod"], e)
	}
}

// https peers found in SRV records, with no --peer-trusted-ca-file, have
// their certificates verified against the SRV domain, as etcd does: here
// the certificate names only the domain (and the CA is the system's, through
// SSL_CERT_FILE), so verifying against each peer's host name would fail.
func TestDiscoverySRVHTTPSDomain(t *testing.T) {
	requireKind(t, "synod")
	dir := t.TempDir()
	ca, err := testpki.NewCA("srv-ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue("synod.test", "synod.test")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pair.Write(dir, "peer")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := testpki.WriteFile(caFile, ca.PEM); err != nil {
		t.Fatal(err)
	}
	d := dnstest.Start(t)
	t.Setenv("SYNOD_TEST_DNS_SERVER", d.Addr())
	t.Setenv("SSL_CERT_FILE", caFile)
	var targets []dnstest.Target
	c := startDiscovered(t, "synod", 3, func(i, port int) string {
		host := fmt.Sprintf("m%d.synod.test", i)
		d.SetA(host, "127.0.0.1")
		targets = append(targets, dnstest.Target{Host: host, Port: uint16(port)})
		d.SetSRV("_etcd-server-ssl._tcp.synod.test", targets...)
		return fmt.Sprintf("https://%s:%d", host, port)
	}, "--discovery-srv=synod.test", "--peer-cert-file="+cert, "--peer-key-file="+key)
	waitFormed(t, c, "etcd-cluster")
}
