package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
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

func startConsulCluster(t *testing.T) *consulCluster {
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
		return []string{"--consul-listen-url=" + cc.urls[m.Index]}
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
		Check: &consul.AgentServiceCheck{CheckID: id + "-ttl", TTL: "30s"}}
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
		all, _, err := reader.Health().Service("web", "", false, nil)
		if err != nil || len(all) != 2 {
			t.Fatalf("all instances = %s, %v; want 2", describeEntries(all), err)
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
		start := time.Now()
		_, again, err := reader.Health().Service("web", "", true, &consul.QueryOptions{WaitIndex: r.meta.LastIndex, WaitTime: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < time.Second || again.LastIndex != r.meta.LastIndex {
			t.Fatalf("with no change: returned after %v with index %d, want ≥ 1s with index %d", took, again.LastIndex, r.meta.LastIndex)
		}
	})

	t.Run("registrations survive kill -9", func(t *testing.T) {
		cc.Kill9(1)
		svcs, _, err := reader.Catalog().Service("web", "", nil)
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
