package consuldns

import (
	"errors"
	"net"
	"testing"

	"github.com/miekg/dns"
)

func TestParseName(t *testing.T) {
	const dom = "consul."
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  lookup
		err   error
	}{
		{"web.service.consul.", dns.TypeA, lookup{kind: kindService, service: "web", dc: "dc1"}, nil},
		{"Web.SERVICE.consul.", dns.TypeA, lookup{kind: kindService, service: "Web", dc: "dc1"}, nil},
		{"primary.web.service.consul.", dns.TypeSRV, lookup{kind: kindService, service: "web", tag: "primary", dc: "dc1"}, nil},
		{"a.b.web.service.consul.", dns.TypeA, lookup{kind: kindService, service: "web", tag: "a.b", dc: "dc1"}, nil},
		{"_web._primary.service.consul.", dns.TypeSRV, lookup{kind: kindService, service: "web", tag: "primary", dc: "dc1"}, nil},
		{"_web._tcp.service.consul.", dns.TypeSRV, lookup{kind: kindService, service: "web", dc: "dc1"}, nil},
		{"_web._TCP.service.dc1.consul.", dns.TypeSRV, lookup{kind: kindService, service: "web", dc: "dc1"}, nil},
		{"_web._tcp.consul.", dns.TypeSRV, lookup{kind: kindService, service: "web", dc: "dc1"}, nil}, // "service" optional for SRV
		{"_web._tcp.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"web.service.dc1.consul.", dns.TypeA, lookup{kind: kindService, service: "web", dc: "dc1"}, nil},
		{"web.service.DC1.dc.consul.", dns.TypeA, lookup{kind: kindService, service: "web", dc: "dc1"}, nil},
		{"web.service.dc2.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"web.service.p.peer.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"web.service.a.b.c.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"service.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"m0.node.consul.", dns.TypeA, lookup{kind: kindNode, node: "m0", dc: "dc1"}, nil},
		{"host.example.node.dc1.consul.", dns.TypeA, lookup{kind: kindNode, node: "host.example", dc: "dc1"}, nil},
		{"node.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"0a000001.addr.dc1.consul.", dns.TypeA, lookup{kind: kindAddr, addr: net.IP{10, 0, 0, 1}, dc: "dc1"}, nil},
		{"zz000001.addr.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"0a0000.addr.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"web.query.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"web.connect.consul.", dns.TypeA, lookup{}, errNameNotFound},
		{"nothing.here.consul.", dns.TypeA, lookup{}, errNameNotFound},
	} {
		got, err := parseName(tc.name, dom, "dc1", tc.qtype)
		if !errors.Is(err, tc.err) || got.kind != tc.want.kind || got.service != tc.want.service || got.tag != tc.want.tag ||
			got.node != tc.want.node || got.dc != tc.want.dc || !got.addr.Equal(tc.want.addr) {
			t.Errorf("parseName(%q, %s) = %+v, %v; want %+v, %v", tc.name, dns.TypeToString[tc.qtype], got, err, tc.want, tc.err)
		}
	}
}

func TestInZone(t *testing.T) {
	for name, want := range map[string]bool{"web.service.consul.": true, "WEB.Service.CONSUL": true, "consul.": true,
		"xconsul.": false, "example.com.": false, "consul.example.": false, ".": false} {
		if got := inZone(name, "consul."); got != want {
			t.Errorf("inZone(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRFC1464(t *testing.T) {
	for k, want := range map[[2]string]string{
		{"key", "v"}: "key=v", {"a=b", "c`d"}: "a`=b=c``d", {"  sp ", "x"}: "` ` sp` =x", {"", ""}: "=",
	} {
		if got := rfc1464(k[0], k[1]); got != want {
			t.Errorf("rfc1464(%q, %q) = %q, want %q", k[0], k[1], got, want)
		}
	}
}
