package consuldns

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/synod-db/synod/catalog"
)

// fakeCatalog answers from fixed entries, filtering as the Catalog
// contract says (the real one is consulapi's, tested end to end).
type fakeCatalog struct {
	entries []*catalog.ServiceEntry
	nodes   []*catalog.Node
	err     error
	block   chan struct{} // when set, reads wait on it
}

func (f *fakeCatalog) ServiceInstances(ctx context.Context, name string, tags []string, onlyPassing bool) ([]*catalog.ServiceEntry, error) {
	if f.block != nil {
		<-f.block
	}
	var out []*catalog.ServiceEntry
	for _, e := range f.entries {
		st := catalog.Aggregate(e.Checks)
		if e.Service.Service == name && catalog.HasTags(e.Service, tags) && st != catalog.StatusCritical && (!onlyPassing || st == catalog.StatusPassing) {
			out = append(out, e)
		}
	}
	return out, f.err
}

func (f *fakeCatalog) Node(ctx context.Context, name string) (*catalog.Node, error) {
	for _, n := range f.nodes {
		if n.Node == name {
			return n, f.err
		}
	}
	return nil, f.err
}

func (f *fakeCatalog) Servers(ctx context.Context) ([]*catalog.Node, error) { return f.nodes, f.err }

func (f *fakeCatalog) Nodes(ctx context.Context) ([]*catalog.Node, error) { return f.nodes, f.err }

func (f *fakeCatalog) Instances(ctx context.Context) ([]*catalog.Service, error) {
	var out []*catalog.Service
	for _, e := range f.entries {
		out = append(out, e.Service)
	}
	return out, f.err
}

func node(name, addr string) *catalog.Node {
	return &catalog.Node{Node: name, Address: addr, Datacenter: "dc1", Meta: map[string]string{"rack": "r1"}}
}

func entry(n *catalog.Node, id, addr string, port int, status string, tags ...string) *catalog.ServiceEntry {
	return &catalog.ServiceEntry{Node: n,
		Service: &catalog.Service{ID: id, Service: "web", Address: addr, Port: port, Tags: tags, Weights: catalog.Weights{Passing: 10, Warning: 2}},
		Checks:  []*catalog.Check{{CheckID: id + "-ttl", Status: status}}}
}

func testCatalog() *fakeCatalog {
	n0, n1, n2 := node("m0", "127.0.0.1"), node("m1", "127.0.0.2"), node("m2", "2001:db8::2")
	return &fakeCatalog{nodes: []*catalog.Node{n0, n1, n2}, entries: []*catalog.ServiceEntry{
		entry(n0, "web-a", "", 8080, catalog.StatusPassing, "primary"),
		entry(n1, "web-b", "10.0.0.9", 8081, catalog.StatusWarning),
		entry(n2, "web-c", "", 8082, catalog.StatusCritical),
	}}
}

func ask(t *testing.T, h *Handler, name string, qtype uint16, tcp bool, edns uint16) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	if edns > 0 {
		req.SetEdns0(edns, false)
	}
	return h.Answer(context.Background(), req, tcp)
}

func newHandler(cat Catalog, cfg Config) *Handler {
	cfg.NodeMetaTXT = true
	cfg.EnableTruncate = true
	return NewHandler(cfg, cat, Limits{}, nil)
}

func rrs(rs []dns.RR) string {
	var out []string
	for _, r := range rs {
		out = append(out, strings.ReplaceAll(r.String(), "\t", " "))
	}
	return strings.Join(out, "; ")
}

func TestServiceSRV(t *testing.T) {
	h := newHandler(testCatalog(), Config{ServiceTTL: 30 * time.Second})
	m := ask(t, h, "web.service.consul.", dns.TypeSRV, false, 0)
	if m.Rcode != dns.RcodeSuccess || !m.Authoritative || m.RecursionAvailable || len(m.Answer) != 2 {
		t.Fatalf("SRV: rcode %s, %d answers (%s); want NOERROR, authoritative, web-a and web-b (web-c is critical)", dns.RcodeToString[m.Rcode], len(m.Answer), rrs(m.Answer))
	}
	want := map[string]string{ // target -> port, weight, additional record
		"m0.node.dc1.consul.":       "8080 10 m0.node.dc1.consul. 30 IN A 127.0.0.1",
		"0a000009.addr.dc1.consul.": "8081 2 0a000009.addr.dc1.consul. 30 IN A 10.0.0.9",
	}
	extra := rrs(m.Extra)
	for _, rr := range m.Answer {
		s := rr.(*dns.SRV)
		w, ok := want[s.Target]
		if !ok || s.Hdr.Ttl != 30 || fmt.Sprintf("%d %d", s.Port, s.Weight) != strings.Join(strings.Fields(w)[:2], " ") {
			t.Errorf("SRV %s: want one of %v with TTL 30", s, want)
			continue
		}
		if a := strings.Join(strings.Fields(w)[2:], " "); !strings.Contains(extra, a) {
			t.Errorf("additional %q lacks %q", extra, a)
		}
	}
	if !strings.Contains(extra, `m0.node.dc1.consul. 30 IN TXT "rack=r1"`) {
		t.Errorf("additional %q lacks the node meta TXT", extra)
	}
}

func TestServiceA(t *testing.T) {
	cat := testCatalog()
	cat.entries = append(cat.entries, entry(cat.nodes[0], "web-a2", "", 9090, catalog.StatusPassing)) // same address as web-a
	h := newHandler(cat, Config{})
	m := ask(t, h, "web.service.consul.", dns.TypeA, false, 0)
	if got := rrs(m.Answer); len(m.Answer) != 2 || !strings.Contains(got, "127.0.0.1") || !strings.Contains(got, "10.0.0.9") || len(m.Extra) != 0 {
		t.Fatalf("A: %s (extra %s); want 127.0.0.1 once and 10.0.0.9", got, rrs(m.Extra))
	}
	if m := ask(t, h, "primary.web.service.consul.", dns.TypeA, false, 0); len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Fatalf("tag primary: %s; want 127.0.0.1 alone", rrs(m.Answer))
	}
	if m := ask(t, h, "_web._primary.service.consul.", dns.TypeSRV, false, 0); len(m.Answer) != 1 || m.Answer[0].(*dns.SRV).Target != "m0.node.dc1.consul." {
		t.Fatalf("RFC 2782 tag primary: %s; want m0 alone", rrs(m.Answer))
	}
	only := newHandler(cat, Config{OnlyPassing: true})
	if m := ask(t, only, "web.service.consul.", dns.TypeA, false, 0); len(m.Answer) != 1 {
		t.Fatalf("only passing: %s; want 127.0.0.1 alone", rrs(m.Answer))
	}
	m = ask(t, h, "web.service.consul.", dns.TypeAAAA, false, 0)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("AAAA of IPv4 instances: %s, answer %s, ns %s; want NOERROR, no answer, the SOA", dns.RcodeToString[m.Rcode], rrs(m.Answer), rrs(m.Ns))
	}
}

func TestNotFoundAndErrors(t *testing.T) {
	cat := testCatalog()
	h := newHandler(cat, Config{})
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		soa   bool
	}{
		{"nope.service.consul.", dns.TypeA, dns.RcodeNameError, true},
		{"web.service.dc9.consul.", dns.TypeSRV, dns.RcodeNameError, true},
		{"nope.node.consul.", dns.TypeA, dns.RcodeNameError, true},
		{"junk.consul.", dns.TypeA, dns.RcodeNameError, true},
		{"example.com.", dns.TypeA, dns.RcodeRefused, false},
		{"9.9.9.9.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, true},
		{"arpa.", dns.TypePTR, dns.RcodeNameError, true},
		{"consul.", dns.TypeAXFR, dns.RcodeNotImplemented, false},
		{"m0.node.consul.", dns.TypeMX, dns.RcodeSuccess, false},
	} {
		m := ask(t, h, tc.name, tc.qtype, false, 0)
		hasSOA := len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA
		if m.Rcode != tc.rcode || hasSOA != tc.soa {
			t.Errorf("%s %s: %s, ns %s; want %s, SOA %v", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[m.Rcode], rrs(m.Ns), dns.RcodeToString[tc.rcode], tc.soa)
		}
	}
	req := new(dns.Msg)
	req.SetQuestion("web.service.consul.", dns.TypeA)
	req.Opcode = dns.OpcodeUpdate
	if m := h.Answer(context.Background(), req, false); m.Rcode != dns.RcodeNotImplemented {
		t.Errorf("UPDATE: %s, want NOTIMP", dns.RcodeToString[m.Rcode])
	}
	req.Opcode, req.Question = dns.OpcodeQuery, nil
	if m := h.Answer(context.Background(), req, false); m.Rcode != dns.RcodeFormatError {
		t.Errorf("no question: %s, want FORMERR", dns.RcodeToString[m.Rcode])
	}
	cat.err = errors.New("no leader")
	if m := ask(t, h, "web.service.consul.", dns.TypeA, false, 0); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("catalog error: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
}

func TestNodeAddrSOA(t *testing.T) {
	h := newHandler(testCatalog(), Config{NodeTTL: 10 * time.Second})
	m := ask(t, h, "m0.node.consul.", dns.TypeA, false, 0)
	if got := rrs(m.Answer); got != "m0.node.consul. 10 IN A 127.0.0.1" || !strings.Contains(rrs(m.Extra), "rack=r1") {
		t.Fatalf("node A: %s (extra %s)", got, rrs(m.Extra))
	}
	if m := ask(t, h, "m2.node.dc1.consul.", dns.TypeAAAA, false, 0); len(m.Answer) != 1 || m.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8::2" {
		t.Fatalf("node AAAA: %s", rrs(m.Answer))
	}
	if m := ask(t, h, "m0.node.consul.", dns.TypeTXT, false, 0); rrs(m.Answer) != `m0.node.consul. 10 IN TXT "rack=r1"` {
		t.Fatalf("node TXT: %s", rrs(m.Answer))
	}
	if m := ask(t, h, "7f000001.addr.consul.", dns.TypeA, false, 0); rrs(m.Answer) != "7f000001.addr.consul. 10 IN A 127.0.0.1" {
		t.Fatalf("addr: %s", rrs(m.Answer))
	}
	m = ask(t, h, "consul.", dns.TypeSOA, false, 0)
	s, ok := m.Answer[0].(*dns.SOA)
	if !ok || s.Ns != "ns.consul." || s.Mbox != "hostmaster.consul." || s.Refresh != 3600 || s.Retry != 600 || s.Expire != 86400 || len(m.Ns) != 3 || len(m.Extra) != 3 {
		t.Fatalf("SOA: %s, ns %s, extra %s", rrs(m.Answer), rrs(m.Ns), rrs(m.Extra))
	}
	m = ask(t, h, "consul.", dns.TypeNS, false, 0)
	if len(m.Answer) != 3 || !strings.Contains(rrs(m.Answer), "IN NS m1.node.dc1.consul.") || !strings.Contains(rrs(m.Extra), "m1.node.dc1.consul. 10 IN A 127.0.0.2") {
		t.Fatalf("NS: %s, extra %s", rrs(m.Answer), rrs(m.Extra))
	}
}

// manyInstances is a service with n instances on n nodes.
func manyInstances(n int) *fakeCatalog {
	cat := &fakeCatalog{}
	for i := 0; i < n; i++ {
		nd := node(fmt.Sprintf("node-with-a-long-name-%03d", i), fmt.Sprintf("10.1.%d.%d", i/250, i%250+1))
		cat.nodes = append(cat.nodes, nd)
		cat.entries = append(cat.entries, entry(nd, fmt.Sprintf("web-%d", i), "", 80, catalog.StatusPassing))
	}
	return cat
}

func TestTruncation(t *testing.T) {
	h := newHandler(manyInstances(40), Config{})
	m := ask(t, h, "web.service.consul.", dns.TypeA, false, 0)
	if len(m.Answer) != DefaultUDPAnswerLimit || !m.Truncated {
		t.Fatalf("UDP A without EDNS0: %d answers, TC %v; want %d and TC", len(m.Answer), m.Truncated, DefaultUDPAnswerLimit)
	}
	m = ask(t, h, "web.service.consul.", dns.TypeSRV, false, 0)
	packed, _ := m.Pack()
	if len(m.Answer) == 0 || len(m.Answer) > DefaultUDPAnswerLimit || !m.Truncated || len(packed) > 512 || !sameTargets(m) {
		t.Fatalf("UDP SRV: %d answers, %d extra, %d bytes, TC %v", len(m.Answer), len(m.Extra), len(packed), m.Truncated)
	}
	m = ask(t, h, "web.service.consul.", dns.TypeSRV, false, 1232)
	packed, _ = m.Pack()
	if len(m.Answer) <= DefaultUDPAnswerLimit || len(m.Answer) == 40 || !m.Truncated || len(packed) > 1232 || !sameTargets(m) || m.IsEdns0() == nil {
		t.Fatalf("UDP SRV with EDNS0 1232: %d answers, %d bytes, TC %v, OPT %v", len(m.Answer), len(packed), m.Truncated, m.IsEdns0() != nil)
	}
	m = ask(t, h, "web.service.consul.", dns.TypeSRV, true, 0)
	if len(m.Answer) != 40 || m.Truncated || !sameTargets(m) {
		t.Fatalf("TCP SRV: %d answers, TC %v; want all 40", len(m.Answer), m.Truncated)
	}
	big := newHandler(manyInstances(3000), Config{})
	m = ask(t, big, "web.service.consul.", dns.TypeSRV, true, 0)
	packed, err := m.Pack()
	if err != nil || len(packed) > 65535 || len(m.Answer) >= 3000 || !m.Truncated {
		t.Fatalf("TCP SRV of 3000: %d answers, %d bytes, %v; want cut under 64 KiB", len(m.Answer), len(packed), err)
	}
}

// sameTargets reports whether the additional section holds the A record
// of every SRV target and nothing else but TXT and OPT records.
func sameTargets(m *dns.Msg) bool {
	targets := map[string]bool{}
	for _, rr := range m.Answer {
		targets[rr.(*dns.SRV).Target] = true
	}
	as := 0
	for _, rr := range m.Extra {
		switch rr.(type) {
		case *dns.A:
			if !targets[rr.Header().Name] {
				return false
			}
			as++
		case *dns.TXT, *dns.OPT:
		default:
			return false
		}
	}
	return as == len(targets)
}

func TestInFlightBound(t *testing.T) {
	cat := testCatalog()
	cat.block = make(chan struct{})
	h := NewHandler(Config{}, cat, Limits{MaxInFlight: 1}, nil)
	done := make(chan *dns.Msg)
	go func() { done <- ask(t, h, "web.service.consul.", dns.TypeA, false, 0) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(h.slots) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if m := ask(t, h, "web.service.consul.", dns.TypeA, false, 0); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("over the in-flight bound: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	close(cat.block)
	if m := <-done; m.Rcode != dns.RcodeSuccess {
		t.Errorf("the first question: %s", dns.RcodeToString[m.Rcode])
	}
}

// FuzzAnswer feeds messages as a client could send them: whatever parses
// is answered without a panic, and the answer packs within its bound.
func FuzzAnswer(f *testing.F) {
	for _, name := range []string{"web.service.consul.", "_web._tcp.service.consul.", "m0.node.dc1.consul.", "7f000001.addr.consul.", "consul.", "a.b.c.d.e.f.service.x.dc.consul.", "example.com.", "1.0.0.127.in-addr.arpa."} {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeSRV, dns.TypeANY, dns.TypeSOA, dns.TypeNS, dns.TypeTXT, 65000} {
			q := new(dns.Msg)
			q.SetQuestion(name, qtype)
			b, _ := q.Pack()
			f.Add(b, false)
		}
	}
	h := newHandler(manyInstances(30), Config{})
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		req := new(dns.Msg)
		if req.Unpack(pkt) != nil {
			return
		}
		m := h.Answer(context.Background(), req, tcp)
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("answer to %v does not pack: %v", req.Question, err)
		}
		if limit := udpSize(req); !tcp && len(b) > limit && len(m.Answer) > 1 {
			t.Fatalf("UDP answer of %d bytes over %d", len(b), limit)
		}
	})
}

func TestPTR(t *testing.T) {
	h := newHandler(testCatalog(), Config{})
	for name, want := range map[string]string{
		"2.0.0.127.in-addr.arpa.": "m1.node.dc1.consul.",
		"9.0.0.10.in-addr.arpa.":  "web.service.dc1.consul.",
		"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.": "m2.node.dc1.consul.",
	} {
		m := ask(t, h, name, dns.TypePTR, false, 0)
		if len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != want || !m.Authoritative {
			t.Errorf("PTR %s: %s %s; want %s", name, dns.RcodeToString[m.Rcode], rrs(m.Answer), want)
		}
	}
	for name, want := range map[string]string{"4.3.2.1.in-addr.arpa.": "1.2.3.4", "1.2.3.in-addr.arpa.": "<nil>", "x.2.3.4.in-addr.arpa.": "<nil>",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.": "::1", "1.0.ip6.arpa.": "<nil>", "example.arpa.": "<nil>"} {
		if got := ipFromARPA(name).String(); got != want {
			t.Errorf("ipFromARPA(%q) = %s, want %s", name, got, want)
		}
	}
}
