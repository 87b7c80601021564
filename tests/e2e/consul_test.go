package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// consulCluster is a 3-member synod with the Consul API on each member.
type consulCluster struct {
	*Cluster
	urls    []string         // each member's --consul-listen-url
	clients []*consul.Client // the real Consul API client, one per member
}

// startConsulCluster starts it; extra, when given, adds flags of a
// member's own (as clusterOptions.MemberFlags).
func startConsulCluster(t *testing.T, extra ...func(m *Member) []string) *consulCluster {
	t.Helper()
	requireKind(t, "synod")
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	cc := &consulCluster{}
	for _, p := range ports {
		cc.urls = append(cc.urls, fmt.Sprintf("http://127.0.0.1:%d", p))
	}
	cc.Cluster = startClusterWith(t, "synod", 3, clusterOptions{MemberFlags: func(m *Member) []string {
		flags := []string{"--consul-listen-url=" + cc.urls[m.Index]}
		for _, f := range extra {
			flags = append(flags, f(m)...)
		}
		return flags
	}})
	for _, u := range cc.urls {
		cfg := consul.DefaultConfig()
		cfg.Address = strings.TrimPrefix(u, "http://")
		cli, err := consul.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cc.clients = append(cc.clients, cli)
	}
	for i, cli := range cc.clients { // each member registers its own node once it serves
		name := cc.Members[i].Name
		err := waitFor(20*time.Second, 50*time.Millisecond, func() (bool, error) {
			n, _, err := cli.Catalog().Node(name, nil)
			return err == nil && n != nil, err
		})
		if err != nil {
			t.Fatalf("%s: its node never appeared in the catalog: %v", name, err)
		}
	}
	return cc
}

func ttlService(id string, tags ...string) *consul.AgentServiceRegistration {
	return &consul.AgentServiceRegistration{ID: id, Name: "web", Port: 8080, Address: "10.0.0.1", Tags: tags,
		Check: &consul.AgentServiceCheck{CheckID: id + "-ttl", TTL: "10m"}}
}

func TestConsulCatalog(t *testing.T) {
	cc := startConsulCluster(t)
	a, b, reader := cc.clients[0], cc.clients[1], cc.clients[2]
	if err := a.Agent().ServiceRegister(ttlService("web-a", "primary", "v1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Agent().ServiceRegister(ttlService("web-b", "v1")); err != nil {
		t.Fatal(err)
	}

	t.Run("read from a third member", func(t *testing.T) {
		svcs, meta, err := reader.Catalog().Service("web", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, s := range svcs {
			got[s.ServiceID] = s.Node
		}
		if len(got) != 2 || got["web-a"] != "m0" || got["web-b"] != "m1" {
			t.Fatalf("catalog service web from m2 = %v, want web-a on m0 and web-b on m1", got)
		}
		if meta.LastIndex == 0 || !meta.KnownLeader {
			t.Fatalf("query meta = %+v, want an index and a known leader", meta)
		}
		tagged, _, err := reader.Catalog().Service("web", "primary", nil)
		if err != nil || len(tagged) != 1 || tagged[0].ServiceID != "web-a" {
			t.Fatalf("tag primary: %v, %v; want web-a alone", tagged, err)
		}
	})

	t.Run("health leaves critical out", func(t *testing.T) {
		if err := a.Agent().PassTTL("web-a-ttl", "ok"); err != nil {
			t.Fatal(err)
		}
		entries, _, err := reader.Health().Service("web", "", true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Service.ID != "web-a" || entries[0].Checks.AggregatedStatus() != consul.HealthPassing {
			t.Fatalf("passing instances = %s, want web-a alone", describeEntries(entries))
		}
		all, meta, err := reader.Health().Service("web", "", false, nil)
		if err != nil || len(all) != 2 {
			t.Fatalf("all instances = %s, %v; want 2", describeEntries(all), err)
		}
		filtered, _, err := reader.Health().Service("web", "", false, &consul.QueryOptions{Filter: `Service.ID == "web-b" and "v1" in Service.Tags`})
		if err != nil || len(filtered) != 1 || filtered[0].Service.ID != "web-b" {
			t.Fatalf("filtered instances = %s, %v; want web-b alone", describeEntries(filtered), err)
		}
		if _, _, err := reader.Health().Service("web", "", false, &consul.QueryOptions{Filter: `Service.ID ==`}); err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("a malformed filter: %v, want a 400", err)
		}
		both, _, err := reader.Health().ServiceMultipleTags("web", []string{"v1", "PRIMARY"}, false, nil)
		if err != nil || len(both) != 1 || both[0].Service.ID != "web-a" {
			t.Fatalf("tags v1 and PRIMARY = %s, %v; want web-a alone", describeEntries(both), err)
		}
		// the same status and output again writes nothing: the index stays
		if err := a.Agent().PassTTL("web-a-ttl", "ok"); err != nil {
			t.Fatal(err)
		}
		if _, again, err := reader.Health().Service("web", "", false, nil); err != nil || again.LastIndex != meta.LastIndex {
			t.Fatalf("an unchanged TTL pass moved the index %d -> %d (%v); want no write", meta.LastIndex, again.LastIndex, err)
		}
	})

	t.Run("blocking query wakes on a check flip", func(t *testing.T) {
		_, meta, err := reader.Health().Service("web", "", true, nil)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			entries []*consul.ServiceEntry
			meta    *consul.QueryMeta
			err     error
			took    time.Duration
		}
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			es, m, err := reader.Health().Service("web", "", true, &consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
			done <- result{es, m, err, time.Since(start)}
		}()
		select {
		case r := <-done:
			t.Fatalf("blocking query returned before any change: %s, index %d (asked %d), err %v", describeEntries(r.entries), r.meta.LastIndex, meta.LastIndex, r.err)
		case <-time.After(500 * time.Millisecond):
		}
		if err := b.Agent().PassTTL("web-b-ttl", "ok"); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.took > 10*time.Second || r.meta.LastIndex <= meta.LastIndex || len(r.entries) != 2 {
			t.Fatalf("after the flip: %s, index %d (asked %d) after %v; want both instances, a higher index, promptly",
				describeEntries(r.entries), r.meta.LastIndex, meta.LastIndex, r.took)
		}
		// an index past any revision (Consul's is a uint64) waits out its wait too
		start := time.Now()
		if _, huge, err := reader.Health().Service("web", "", true, &consul.QueryOptions{WaitIndex: 1<<64 - 1, WaitTime: 300 * time.Millisecond}); err != nil || time.Since(start) < 300*time.Millisecond || huge.LastIndex != r.meta.LastIndex {
			t.Fatalf("with index 2^64-1: %v after %v (index %v); want the current answer after the wait", err, time.Since(start), huge)
		}
		start = time.Now()
		_, again, err := reader.Health().Service("web", "", true, &consul.QueryOptions{WaitIndex: r.meta.LastIndex, WaitTime: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < time.Second || again.LastIndex != r.meta.LastIndex {
			t.Fatalf("with no change: returned after %v with index %d, want ≥ 1s with index %d", took, again.LastIndex, r.meta.LastIndex)
		}
	})

	t.Run("agent and status", func(t *testing.T) { testConsulAgentStatus(t, cc) })
	t.Run("maintenance mode", func(t *testing.T) { testConsulMaintenance(t, cc) })
	t.Run("catalog register, list and deregister", func(t *testing.T) { testConsulCatalogWrites(t, cc) })
	t.Run("bounds", func(t *testing.T) { testConsulBounds(t, cc) })
	t.Run("blocking query from a compacted index", func(t *testing.T) { testConsulBlockingAfterCompaction(t, cc) })
	t.Run("concurrent writers of one node", func(t *testing.T) { testConsulConcurrentNodeWrites(t, cc) })
	t.Run("prometheus consul_sd", func(t *testing.T) { testPrometheusConsulSD(t, cc) })
	t.Run("python-consul2 client", func(t *testing.T) { testConsulPythonClient(t, cc) })

	t.Run("registrations survive kill -9", func(t *testing.T) {
		cc.Kill9(1)
		// m1 may have led: until a new leader is elected reads answer
		// Consul's 500 "No cluster leader", and clients retry.
		var svcs []*consul.CatalogService
		err := waitFor(10*time.Second, 50*time.Millisecond, func() (bool, error) {
			var err error
			svcs, _, err = reader.Catalog().Service("web", "", nil)
			return err == nil, err
		})
		if err != nil || len(svcs) != 2 {
			t.Fatalf("after kill -9 of m1: %v, %v; want both instances", svcs, err)
		}
		cc.Restart(1)
		err = waitFor(20*time.Second, 100*time.Millisecond, func() (bool, error) {
			svcs, err := b.Agent().Services()
			return err == nil && svcs["web-b"] != nil && svcs["web-b"].Port == 8080, err
		})
		if err != nil {
			t.Fatalf("m1's agent after its restart: %v", err)
		}
	})

	t.Run("bad input gets Consul's codes", func(t *testing.T) {
		for _, tc := range []struct {
			method, path, body string
			code               int
			text               string
		}{
			{"PUT", "/v1/agent/service/register", `{"Name": "x",`, 400, "Request decode failed: "},
			{"PUT", "/v1/agent/service/register", `{"Port": 1}`, 400, "Missing service name"},
			{"GET", "/v1/no/such/endpoint", "", 404, ""},
			{"POST", "/v1/agent/services", "", 405, "method POST not allowed"},
			{"PUT", "/v1/agent/service/deregister/nope", "", 404, `Unknown service ID "nope"`},
			{"GET", "/v1/health/state/", "", 400, "Missing check state"},
			{"GET", "/v1/health/service/", "", 400, "Missing service name"},
			{"GET", "/v1/health/service/web?passing=maybe", "", 400, "Invalid value for ?passing"},
			{"GET", "/v1/catalog/nodes?wait=soon&index=1", "", 400, "Invalid wait time"},
			{"GET", "/v1/catalog/nodes?stale&consistent", "", 400, "Cannot specify ?stale with ?consistent"},
			{"GET", "/v1/catalog/nodes?dc=elsewhere", "", 500, "No path to datacenter"},
			{"PUT", "/v1/agent/check/update/web-a-ttl", `{"Status":"fine"}`, 400, "Invalid check status: 'fine'"},
			{"PUT", "/v1/agent/check/pass/nope", "", 404, `CheckID "nope" does not have associated TTL`},
			{"PUT", "/v1/agent/maintenance", "", 400, "Missing value for enable"},
			{"PUT", "/v1/agent/maintenance?enable=sure", "", 400, `Invalid value for enable: "sure"`},
			{"PUT", "/v1/agent/service/maintenance/nope?enable=true", "", 404, `No service registered with ID "nope"`},
			{"GET", "/v1/catalog/nodes?index=x", "", 400, "Invalid index"},
		} {
			req, _ := http.NewRequest(tc.method, cc.urls[2]+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.HasPrefix(string(body), tc.text) {
				t.Errorf("%s %s: %d %q, want %d %q...", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.text)
			}
		}
	})
}

func describeEntries(es []*consul.ServiceEntry) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("%s@%s(%s)", e.Service.ID, e.Node.Node, e.Checks.AggregatedStatus()))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func testConsulAgentStatus(t *testing.T, cc *consulCluster) {
	cli := cc.clients[2]
	self, err := cli.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if dc := self["Config"]["Datacenter"]; dc != "dc1" {
		t.Errorf("Config.Datacenter = %v, want dc1", dc)
	}
	if v, err := cli.Agent().Version(); err != nil || v["HumanVersion"] == "" {
		t.Errorf("agent version = %v, %v", v, err)
	}
	if name, err := cli.Agent().NodeName(); err != nil || name != "m2" {
		t.Errorf("NodeName = %q, %v; want m2", name, err)
	}
	members, err := cli.Agent().Members(false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range members {
		if m.Status != 1 { // serf.StatusAlive
			t.Errorf("member %s has status %d", m.Name, m.Status)
		}
		names = append(names, m.Name)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "m0,m1,m2" {
		t.Errorf("members = %v, want m0,m1,m2", names)
	}
	leader, err := cli.Status().Leader()
	if err != nil {
		t.Fatal(err)
	}
	peers, err := cli.Status().Peers()
	if err != nil {
		t.Fatal(err)
	}
	var peerAddrs []string
	for _, m := range cc.Members {
		peerAddrs = append(peerAddrs, strings.TrimPrefix(m.PeerURL, "http://"))
	}
	slices.Sort(peers)
	slices.Sort(peerAddrs)
	if !slices.Equal(peers, peerAddrs) || !slices.Contains(peerAddrs, leader) {
		t.Errorf("leader %q, peers %v; want one of and all of %v", leader, peers, peerAddrs)
	}
}

func testConsulCatalogWrites(t *testing.T, cc *consulCluster) {
	writer, reader := cc.clients[0], cc.clients[1]
	_, meta, err := reader.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := &consul.CatalogRegistration{Node: "ext1", Address: "10.1.1.1", NodeMeta: map[string]string{"rack": "r1"},
		Service: &consul.AgentService{ID: "db1", Service: "db", Port: 5432, Tags: []string{"x"}},
		Check:   &consul.AgentCheck{CheckID: "db-alive", Name: "db alive", Status: consul.HealthPassing, ServiceID: "db1"}}
	if _, err := writer.Catalog().Register(reg, nil); err != nil {
		t.Fatal(err)
	}
	services, meta2, err := reader.Catalog().Services(&consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 10 * time.Second})
	if err != nil || !slices.Equal(services["db"], []string{"x"}) || meta2.LastIndex <= meta.LastIndex {
		t.Fatalf("services = %v (index %d after %d), %v; want db with tag x", services, meta2.LastIndex, meta.LastIndex, err)
	}
	nodes, _, err := reader.Catalog().Nodes(nil)
	if err != nil || len(nodes) != 4 || nodes[0].Node != "ext1" || nodes[0].Address != "10.1.1.1" {
		t.Fatalf("nodes = %v, %v; want ext1 and the three members", nodes, err)
	}
	rack := &consul.QueryOptions{NodeMeta: map[string]string{"rack": "r1"}}
	if nodes, _, err := reader.Catalog().Nodes(rack); err != nil || len(nodes) != 1 || nodes[0].Node != "ext1" {
		t.Fatalf("nodes with rack r1 = %v, %v; want ext1 alone", nodes, err)
	}
	if services, _, err := reader.Catalog().Services(rack); err != nil || len(services) != 1 || services["db"] == nil {
		t.Fatalf("services on rack r1 = %v, %v; want db alone", services, err)
	}
	if es, _, err := reader.Health().Service("web", "", false, rack); err != nil || len(es) != 0 {
		t.Fatalf("web instances on rack r1 = %s, %v; want none", describeEntries(es), err)
	}
	checks, _, err := reader.Health().Checks("db", nil)
	if err != nil || len(checks) != 1 || checks[0].CheckID != "db-alive" || checks[0].Status != consul.HealthPassing {
		t.Fatalf("health checks of db = %v, %v", checks, err)
	}
	passing, _, err := reader.Health().State(consul.HealthPassing, &consul.QueryOptions{AllowStale: true})
	if err != nil || len(passing) < 4 { // db-alive and each member's serfHealth at least
		t.Fatalf("passing checks = %d, %v", len(passing), err)
	}
	node, _, err := reader.Catalog().Node("ext1", &consul.QueryOptions{RequireConsistent: true})
	if err != nil || node == nil || node.Services["db1"] == nil || node.Services["db1"].Port != 5432 {
		t.Fatalf("catalog node ext1 = %+v, %v", node, err)
	}
	list, _, err := reader.Catalog().NodeServiceList("ext1", nil)
	if err != nil || list == nil || list.Node.Node != "ext1" || len(list.Services) != 1 || list.Services[0].ID != "db1" {
		t.Fatalf("node-services of ext1 = %+v, %v", list, err)
	}
	if _, err := writer.Catalog().Deregister(&consul.CatalogDeregistration{Node: "ext1"}, nil); err != nil {
		t.Fatal(err)
	}
	node, _, err = reader.Catalog().Node("ext1", nil)
	if err != nil || node != nil {
		t.Fatalf("catalog node ext1 after its deregistration = %+v, %v; want none", node, err)
	}
	if hc, _, err := reader.Health().Node("ext1", nil); err != nil || len(hc) != 0 {
		t.Fatalf("health of a deregistered node = %v, %v", hc, err)
	}
}

// testConsulBounds checks the body bound (413) and the per-client bound on
// concurrent blocking queries (429), which frees its slots when they end.
func testConsulBounds(t *testing.T, cc *consulCluster) {
	url := cc.urls[0]
	big := `{"Name":"big","Meta":{"k":"` + strings.Repeat("x", 600<<10) + `"}}`
	req, _ := http.NewRequest("PUT", url+"/v1/agent/service/register", strings.NewReader(big))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 600 KiB body: %d, want 413", resp.StatusCode)
	}

	_, meta, err := cc.clients[0].Catalog().Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	// 70 blocking queries from one address: 64 are admitted and wait, the
	// other 6 are refused at once.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	codes := make(chan int, 70)
	blocked := fmt.Sprintf("%s/v1/catalog/nodes?index=%d&wait=30s", url, meta.LastIndex)
	for i := 0; i < 70; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", blocked, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if ctx.Err() == nil {
					codes <- resp.StatusCode
				}
			}
		}()
	}
	for i := 0; i < 6; i++ {
		select {
		case code := <-codes:
			if code != http.StatusTooManyRequests {
				t.Fatalf("a blocking query with nothing to wake it answered %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("of 70 concurrent blocking queries from one address, %d were refused with 429, want 6", i)
		}
	}
	select {
	case code := <-codes:
		t.Fatalf("a seventh of 70 blocking queries answered %d; want 64 waiting", code)
	case <-time.After(300 * time.Millisecond):
	}
	probe := func() (int, error) {
		resp, err := http.Get(fmt.Sprintf("%s/v1/catalog/nodes?index=%d&wait=1ms", url, meta.LastIndex))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	cancel()
	wg.Wait()
	err = waitFor(10*time.Second, 20*time.Millisecond, func() (bool, error) {
		code, err := probe()
		return code == http.StatusOK, err
	})
	if err != nil {
		t.Fatalf("blocking queries still refused after the others ended: %v", err)
	}
}

// testConsulConcurrentNodeWrites races, round after round, a registration
// of a new service on a node (through one member) against a deregistration
// of the whole node (through another). Each write is compared on the node's
// index key, so whichever commits second works on what the first wrote: a
// service is never left behind without its node.
func testConsulConcurrentNodeWrites(t *testing.T, cc *consulCluster) {
	reg, dereg, reader := cc.clients[0].Catalog(), cc.clients[1].Catalog(), cc.clients[2].Catalog()
	node := &consul.CatalogRegistration{Node: "racy", Address: "10.9.9.9",
		Service: &consul.AgentService{ID: "base", Service: "racy"}}
	for i := 0; i < 40; i++ {
		if _, err := reg.Register(node, nil); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := reg.Register(&consul.CatalogRegistration{Node: "racy", Address: "10.9.9.9",
				Service: &consul.AgentService{ID: fmt.Sprintf("r%d", i), Service: "racy"}}, nil)
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := dereg.Deregister(&consul.CatalogDeregistration{Node: "racy"}, nil)
			errs <- err
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		n, _, err := reader.Node("racy", nil)
		if err != nil {
			t.Fatal(err)
		}
		services, _, err := reader.Services(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := services["racy"]; ok && n == nil {
			t.Fatalf("round %d: node racy is gone but instances of racy remain", i)
		}
	}
	if _, err := dereg.Deregister(&consul.CatalogDeregistration{Node: "racy"}, nil); err != nil {
		t.Fatal(err)
	}
}

// testConsulBlockingAfterCompaction asks a blocking query with an index the
// store has compacted away: it must still wake on the next change (its
// watch starts again from the oldest revision kept).
func testConsulBlockingAfterCompaction(t *testing.T, cc *consulCluster) {
	cat := cc.clients[1].Catalog()
	_, meta, err := cat.Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	etcd := newClient(t, cc.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rev int64
	for i := 0; i < 5; i++ {
		resp, err := etcd.Put(ctx, "/not-consul/pad", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	if _, err := etcd.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var after *consul.QueryMeta
	go func() {
		var err error
		_, after, err = cat.Nodes(&consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("returned with nothing changed: index %d (asked %d), %v", after.LastIndex, meta.LastIndex, err)
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	if _, err := cc.clients[0].Catalog().Register(&consul.CatalogRegistration{Node: "late", Address: "10.2.2.2"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second || after.LastIndex <= meta.LastIndex {
		t.Fatalf("woke %v after the change with index %d (asked %d); want promptly and higher", took, after.LastIndex, meta.LastIndex)
	}
	if _, err := cc.clients[0].Catalog().Deregister(&consul.CatalogDeregistration{Node: "late"}, nil); err != nil {
		t.Fatal(err)
	}
}

// testConsulMaintenance puts an instance, then a whole node, into
// maintenance through their agents: each leaves the passing instances
// while it lasts, with the reason (or Consul's default) as its notes.
func testConsulMaintenance(t *testing.T, cc *consulCluster) {
	a, b, reader := cc.clients[0].Agent(), cc.clients[1].Agent(), cc.clients[2].Health()
	passingIDs := func() string {
		t.Helper()
		es, _, err := reader.Service("web", "", true, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range es {
			ids = append(ids, e.Service.ID)
		}
		return strings.Join(ids, ",")
	}
	if got := passingIDs(); got != "web-a,web-b" {
		t.Fatalf("passing before maintenance: %s", got)
	}
	if err := a.EnableServiceMaintenance("web-a", "deploying"); err != nil {
		t.Fatal(err)
	}
	if got := passingIDs(); got != "web-b" {
		t.Fatalf("passing with web-a in maintenance: %s, want web-b", got)
	}
	checks, _, err := reader.Checks("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	var maint *consul.HealthCheck
	for _, c := range checks {
		if c.CheckID == "_service_maintenance:web-a" {
			maint = c
		}
	}
	if maint == nil || maint.Notes != "deploying" || maint.Status != consul.HealthCritical || maint.ServiceName != "web" {
		t.Fatalf("maintenance check = %+v", maint)
	}
	if err := a.DisableServiceMaintenance("web-a"); err != nil {
		t.Fatal(err)
	}
	if err := b.EnableNodeMaintenance(""); err != nil {
		t.Fatal(err)
	}
	if got := passingIDs(); got != "web-a" {
		t.Fatalf("passing with m1 in maintenance: %s, want web-a", got)
	}
	node, _, err := reader.Node("m1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if node.AggregatedStatus() != consul.HealthMaint {
		t.Fatalf("m1's checks aggregate to %s, want maintenance", node.AggregatedStatus())
	}
	if err := b.DisableNodeMaintenance(); err != nil {
		t.Fatal(err)
	}
	if got := passingIDs(); got != "web-a,web-b" {
		t.Fatalf("passing after maintenance: %s", got)
	}
}
