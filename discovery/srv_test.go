package discovery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/synod-db/synod/discovery"
	"github.com/synod-db/synod/discovery/dnstest"
)

func discoverSRV(t *testing.T, d *dnstest.Server, name, serviceName string, peerURLs ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := discovery.SRV{Domain: "synod.test", ServiceName: serviceName, Resolver: discovery.UseDNSServer(d.Addr())}
	cluster, token, err := s.Discover(ctx, discovery.Self{Name: name, PeerURLs: peerURLs, Token: "tok"})
	if err == nil && token != "tok" {
		t.Errorf("token %q, want the member's own", token)
	}
	return cluster, err
}

func hosts(d *dnstest.Server) {
	d.SetA("m1.synod.test", "127.0.0.1")
	d.SetA("m2.synod.test", "127.0.0.2")
	d.SetA("m3.synod.test", "127.0.0.3")
}

// The cluster is built as etcd builds it: https then http records, this
// member recognised by address and named, the others numbered per service.
func TestSRVCluster(t *testing.T) {
	d := dnstest.Start(t)
	hosts(d)
	d.SetSRV("_etcd-server._tcp.synod.test", dnstest.Target{Host: "m1.synod.test", Port: 2380},
		dnstest.Target{Host: "m2.synod.test", Port: 2380}, dnstest.Target{Host: "m3.synod.test", Port: 2380})
	got, err := discoverSRV(t, d, "b", "", "http://127.0.0.2:2380")
	if err != nil {
		t.Fatal(err)
	}
	want := "0=http://m1.synod.test:2380,b=http://m2.synod.test:2380,1=http://m3.synod.test:2380"
	if got != want {
		t.Errorf("cluster\n got %s\nwant %s", got, want)
	}

	d.SetSRV("_etcd-server-ssl-blue._tcp.synod.test", dnstest.Target{Host: "m1.synod.test", Port: 2380})
	d.SetSRV("_etcd-server-blue._tcp.synod.test", dnstest.Target{Host: "m2.synod.test", Port: 2380})
	got, err = discoverSRV(t, d, "a", "blue", "https://m1.synod.test:2380")
	if err != nil {
		t.Fatal(err)
	}
	if want := "a=https://m1.synod.test:2380,0=http://m2.synod.test:2380"; got != want {
		t.Errorf("cluster with --discovery-srv-name\n got %s\nwant %s", got, want)
	}
}

// Bad inputs get etcd's errors.
func TestSRVErrors(t *testing.T) {
	d := dnstest.Start(t)
	hosts(d)
	_, err := discoverSRV(t, d, "a", "", "http://m1.synod.test:2380")
	for _, want := range []string{"error setting up initial cluster: error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.synod.test",
		"error querying DNS SRV records for _etcd-server lookup _etcd-server._tcp.synod.test", "no such host"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no records: error %v, want one with %q", err, want)
		}
	}

	d.SetSRV("_etcd-server._tcp.synod.test", dnstest.Target{Host: "m2.synod.test", Port: 2380})
	_, err = discoverSRV(t, d, "a", "", "http://m1.synod.test:2380")
	if err == nil || err.Error() != `error setting up initial cluster: cannot find local etcd member "a" in SRV records` {
		t.Errorf("not listed: error %v", err)
	}

	d.SetSRV("_etcd-server-ssl._tcp.synod.test", dnstest.Target{Host: "m1.synod.test", Port: 2380})
	_, err = discoverSRV(t, d, "a", "", "http://m1.synod.test:2380")
	if err == nil || err.Error() != `error setting up initial cluster: cannot find local etcd member "a" in SRV records` {
		t.Errorf("listed under the other scheme: error %v", err)
	}

	_, err = discoverSRV(t, d, "a", "", "http://gone.synod.test:2380")
	if err == nil || !strings.Contains(err.Error(), "lookup gone.synod.test") || strings.Contains(err.Error(), "error querying") {
		t.Errorf("own peer URL unresolvable: error %v, want the lookup's error as is", err)
	}
}
