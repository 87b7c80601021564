package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3discovery"
	"go.uber.org/zap"

	"github.com/synod-db/synod/discovery"
	"github.com/synod-db/synod/discovery/dnstest"
	"github.com/synod-db/synod/server"
)

// discoveredCluster builds n members' configs that name no initial cluster
// (mutate sets their discovery) and starts them all at once: v3 discovery
// blocks each start until every member has registered.
func discoveredCluster(t *testing.T, n int, mutate func(i int, c *server.Config)) (*cluster, []error) {
	t.Helper()
	ports := freePorts(t, 2*n)
	dir := t.TempDir()
	c := &cluster{t: t, members: make([]*server.Member, n)}
	for i := 0; i < n; i++ {
		cfg := server.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.DataDir = filepath.Join(dir, cfg.Name)
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs = []string{peer}, []string{peer}
		cfg.HeartbeatInterval, cfg.ElectionTimeout = 25*time.Millisecond, 300*time.Millisecond
		mutate(i, &cfg)
		c.cfgs = append(c.cfgs, cfg)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range c.cfgs {
		wg.Go(func() {
			m, err := server.New(c.cfgs[i], testLogger())
			if err != nil {
				errs[i] = err
				return
			}
			m.Start()
			c.members[i] = m
		})
	}
	wg.Wait()
	t.Cleanup(c.stopAll)
	return c, errs
}

// etcdClusterID is the cluster ID etcd's own membership code derives for
// initialCluster and token.
func etcdClusterID(t *testing.T, initialCluster, token string) uint64 {
	t.Helper()
	urlsmap, err := types.NewURLsMap(initialCluster)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := membership.NewClusterFromURLsMap(zap.NewNop(), token, urlsmap)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(cl.ID())
}

// checkFormed checks the members agree on a leader, list each other by
// the names and peer URLs of initial, and have the cluster ID etcd would
// give them with token.
func checkFormed(t *testing.T, c *cluster, initial []string, token string) {
	t.Helper()
	wantCluster := etcdClusterID(t, strings.Join(initial, ","), token)
	c.waitLeader()
	cli := c.client()
	waitUntil(t, 10*time.Second, "every member published its name", func() bool {
		resp, err := cli.MemberList(ctx(t))
		if err != nil || len(resp.Members) != len(c.cfgs) {
			return false
		}
		for _, m := range resp.Members {
			if len(m.ClientURLs) == 0 {
				return false
			}
		}
		return true
	})
	resp, err := cli.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.ClusterId != wantCluster {
		t.Errorf("cluster ID %x, want %x (etcd's for the discovered cluster)", resp.Header.ClusterId, wantCluster)
	}
	for _, want := range initial {
		found := false
		for _, m := range resp.Members {
			found = found || m.Name+"="+strings.Join(m.PeerURLs, ",") == want
		}
		if !found {
			t.Errorf("%s not in the member list %v", want, resp.Members)
		}
	}
	if _, err := cli.Put(ctx(t), "formed", "yes"); err != nil {
		t.Fatal(err)
	}
}

// Three members find each other in DNS SRV records alone (--discovery-srv),
// by names only the test's DNS server knows: so the peer links resolve
// names through the configured resolver too. One advertises its address
// where the record has its name: as in etcd, it is the member the record
// names. When a member comes back on another address behind its name, the
// others find it again.
func TestDiscoverySRV(t *testing.T) {
	d := dnstest.Start(t)
	res := discovery.UseDNSServer(d.Addr())
	var targets []dnstest.Target
	var initial []string
	c, errs := discoveredCluster(t, 3, func(i int, cfg *server.Config) {
		host := fmt.Sprintf("m%d.synod.test", i)
		_, port, _ := strings.Cut(strings.TrimPrefix(cfg.ListenPeerURLs[0], "http://"), ":")
		cfg.InitialAdvertisePeerURLs = []string{"http://" + host + ":" + port}
		initial = append(initial, cfg.Name+"="+cfg.InitialAdvertisePeerURLs[0])
		if i == 0 {
			cfg.InitialAdvertisePeerURLs = cfg.ListenPeerURLs
		}
		cfg.InitialClusterToken = "srv-token"
		cfg.StrictReconfigCheck = false // the member add below need not wait for a moved member to count as active
		cfg.Resolver = res
		cfg.Discovery = discovery.SRV{Domain: "synod.test", Resolver: res}
		d.SetA(host, "127.0.0.1")
		var p uint16
		fmt.Sscan(port, &p)
		targets = append(targets, dnstest.Target{Host: host, Port: p})
		if i == 2 {
			d.SetSRV("_etcd-server._tcp.synod.test", targets...)
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	checkFormed(t, c, initial, "srv-token")

	// m2 moves to 127.0.0.2 behind the same name.
	lead := c.waitLeader()
	moved := 2
	if lead == 2 {
		moved = 1
	}
	c.stop(moved)
	d.SetA(fmt.Sprintf("m%d.synod.test", moved), "127.0.0.2")
	c.cfgs[moved].ListenPeerURLs = []string{strings.Replace(c.cfgs[moved].ListenPeerURLs[0], "127.0.0.1", "127.0.0.2", 1)}
	c.start(moved)
	if _, err := c.client(lead).Put(ctx(t), "after-move", "v"); err != nil {
		t.Fatal(err)
	}
	cli := c.client(moved)
	waitUntil(t, 10*time.Second, "the moved member receives a write made after it moved", func() bool {
		resp, err := cli.Get(ctx(t), "after-move", clientv3.WithSerializable())
		return err == nil && len(resp.Kvs) == 1
	})

	// A fourth member, added, joins with --initial-cluster-state=existing
	// and the SRV records: it asks the members they list for the membership.
	ports := freePorts(t, 2)
	added := c.cfgs[0]
	added.Name, added.DataDir = "m3", filepath.Join(filepath.Dir(c.cfgs[0].DataDir), "m3")
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	added.ListenClientURLs, added.AdvertiseClientURLs = []string{client}, []string{client}
	added.ListenPeerURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	added.InitialAdvertisePeerURLs = []string{fmt.Sprintf("http://m3.synod.test:%d", ports[1])}
	added.InitialClusterState = "existing"
	d.SetA("m3.synod.test", "127.0.0.1")
	d.SetSRV("_etcd-server._tcp.synod.test", append(targets, dnstest.Target{Host: "m3.synod.test", Port: uint16(ports[1])})...)
	if _, err := c.client(lead).MemberAdd(ctx(t), added.InitialAdvertisePeerURLs); err != nil {
		t.Fatal(err)
	}
	c.cfgs, c.members = append(c.cfgs, added), append(c.members, nil)
	c.start(3)
	cli = c.client(3)
	waitUntil(t, 10*time.Second, "the added member catches up", func() bool {
		resp, err := cli.Get(ctx(t), "after-move", clientv3.WithSerializable())
		return err == nil && len(resp.Kvs) == 1
	})
}

// discoveryConfig is etcd's v3 discovery client for token at endpoint,
// with etcd's default client settings.
func discoveryConfig(endpoint, token string) v3discovery.DiscoveryConfig {
	return v3discovery.DiscoveryConfig{Token: token, ConfigSpec: clientv3.ConfigSpec{
		Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second, RequestTimeout: 5 * time.Second,
		KeepAliveTime: 2 * time.Second, KeepAliveTimeout: 6 * time.Second,
		Secure: &clientv3.SecureConfig{InsecureTransport: true}, Auth: &clientv3.AuthConfig{}}}
}

// Three members bootstrap through the v3 discovery service run by another
// synod cluster; a fourth with the same token is refused (the cluster is
// full), as is a token whose size key the operator never wrote.
func TestDiscoveryV3(t *testing.T) {
	svc := newCluster(t, 1, nil)
	if _, err := svc.client().Put(ctx(t), "/_etcd/registry/tok/_config/size", "3"); err != nil {
		t.Fatal(err)
	}
	var initial []string
	c, errs := discoveredCluster(t, 3, func(i int, cfg *server.Config) {
		cfg.Discovery = discovery.V3{Config: discoveryConfig(svc.endpoint(0), "tok")}
		initial = append(initial, cfg.Name+"="+cfg.InitialAdvertisePeerURLs[0])
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	checkFormed(t, c, initial, "tok")

	for token, want := range map[string]string{
		"tok":   "failed to join discovery cluster (discovery: cluster is full)",
		"nokey": "failed to join discovery cluster (discovery: size key not found)",
	} {
		_, errs = discoveredCluster(t, 1, func(_ int, cfg *server.Config) {
			cfg.Discovery = discovery.V3{Config: discoveryConfig(svc.endpoint(0), token)}
		})
		if errs[0] == nil || errs[0].Error() != want {
			t.Errorf("token %s: error %v, want %q", token, errs[0], want)
		}
	}
	resp, err := svc.client().Get(ctx(t), "/_etcd/registry/tok/members/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 3 {
		t.Errorf("registered members: %v %v, want 3 (a refused member does not register)", resp, err)
	}
}
