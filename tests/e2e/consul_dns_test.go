package e2e

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// TestConsulDNS drives Consul's DNS interface of a 3-member synod:
// instances registered through the real Consul API client, questions asked
// with miekg/dns's client and dig, as a resolver would.
func TestConsulDNS(t *testing.T) {
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	cc := startConsulCluster(t, func(m *Member) []string {
		return []string{"--dns-listen-addr=" + dnsAddr(m.Index), "--dns-service-ttl=7s", "--dns-node-ttl=3s"}
	})
	a, b, c := cc.clients[0].Agent(), cc.clients[1].Agent(), cc.clients[2].Agent()
	register := func(ag *consul.Agent, id, addr string, port int, w *consul.AgentWeights, tags ...string) {
		t.Helper()
		err := ag.ServiceRegister(&consul.AgentServiceRegistration{ID: id, Name: "web", Port: port, Address: addr, Tags: tags, Weights: w,
			Check: &consul.AgentServiceCheck{CheckID: id + "-ttl", TTL: "10m"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	register(a, "web-a", "", 8080, nil, "primary")                                             // on m0, at the node's address
	register(b, "web-b", "10.0.0.2", 8081, &consul.AgentWeights{Passing: 5, Warning: 2}, "v1") // on m1, an address of its own
	register(c, "web-c", "10.0.0.3", 8082, nil, "v1")                                          // on m2
	for _, err := range []error{a.PassTTL("web-a-ttl", ""), b.WarnTTL("web-b-ttl", "slow"), c.FailTTL("web-c-ttl", "down")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	reader := dnsAddr(2)

	t.Run("SRV leaves critical out, keeps warning, with addresses", func(t *testing.T) {
		m := waitAnswer(t, reader, "web.service.consul.", dns.TypeSRV, func(m *dns.Msg) bool { return len(m.Answer) == 2 })
		want := map[string]string{"m0.node.dc1.consul.": "8080 1 127.0.0.1", "0a000002.addr.dc1.consul.": "8081 2 10.0.0.2"}
		got := map[string]string{}
		for _, rr := range m.Answer {
			s := rr.(*dns.SRV)
			if s.Hdr.Ttl != 7 || s.Priority != 1 {
				t.Errorf("SRV %s: want TTL 7 (--dns-service-ttl) and priority 1", s)
			}
			got[s.Target] = fmt.Sprintf("%d %d %s", s.Port, s.Weight, additionalA(m, s.Target))
		}
		if !maps.Equal(got, want) {
			t.Fatalf("SRV web (port weight additional-A by target) = %v, want %v (web-c is critical)", got, want)
		}
	})

	t.Run("A, tags and RFC 2782", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			qtype uint16
			want  []string
		}{
			{"web.service.consul.", dns.TypeA, []string{"10.0.0.2", "127.0.0.1"}},
			{"web.service.dc1.consul.", dns.TypeA, []string{"10.0.0.2", "127.0.0.1"}},
			{"primary.web.service.consul.", dns.TypeA, []string{"127.0.0.1"}},
			{"v1.web.service.consul.", dns.TypeA, []string{"10.0.0.2"}},
			{"_web._v1.service.consul.", dns.TypeSRV, []string{"0a000002.addr.dc1.consul."}},
			{"_web._tcp.service.consul.", dns.TypeSRV, []string{"0a000002.addr.dc1.consul.", "m0.node.dc1.consul."}},
			{"m1.node.consul.", dns.TypeA, []string{"127.0.0.1"}},
			{"0a000002.addr.dc1.consul.", dns.TypeA, []string{"10.0.0.2"}},
			{"1.0.0.127.in-addr.arpa.", dns.TypePTR, []string{"m0.node.dc1.consul."}},    // the first node at that address
			{"2.0.0.10.in-addr.arpa.", dns.TypePTR, []string{"web.service.dc1.consul."}}, // a service's own address
		} {
			m := exchange(t, "udp", reader, question(tc.name, tc.qtype, 0))
			if got := answerValues(m); m.Rcode != dns.RcodeSuccess || !slices.Equal(got, tc.want) {
				t.Errorf("%s %s: %s %v, want NOERROR %v", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[m.Rcode], got, tc.want)
			}
		}
		if m := exchange(t, "udp", reader, question("m1.node.consul.", dns.TypeA, 0)); len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 3 {
			t.Errorf("node TTL: %v, want 3 (--dns-node-ttl)", m.Answer)
		}
	})

	t.Run("NXDOMAIN with the SOA, REFUSED elsewhere", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			qtype uint16
			rcode int
			soa   bool
		}{
			{"nope.service.consul.", dns.TypeA, dns.RcodeNameError, true},
			{"nope.node.consul.", dns.TypeA, dns.RcodeNameError, true},
			{"web.service.dc2.consul.", dns.TypeA, dns.RcodeNameError, true},
			{"web.service.consul.", 65000, dns.RcodeSuccess, true}, // an unknown type: no data
			{"consul.", dns.TypeAXFR, dns.RcodeNotImplemented, false},
			{"example.com.", dns.TypeA, dns.RcodeRefused, false},
		} {
			m := exchange(t, "udp", reader, question(tc.name, tc.qtype, 0))
			hasSOA := len(m.Ns) == 1 && m.Ns[0].(*dns.SOA).Ns == "ns.consul."
			if m.Rcode != tc.rcode || hasSOA != tc.soa || len(m.Answer) != 0 {
				t.Errorf("%s %s: %s, answer %v, authority %v; want %s, SOA %v", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[m.Rcode], m.Answer, m.Ns, dns.RcodeToString[tc.rcode], tc.soa)
			}
		}
	})

	t.Run("UDP truncated, TCP complete", func(t *testing.T) { testDNSTruncation(t, cc, reader) })
	t.Run("dig", func(t *testing.T) { testDNSDig(t, reader) })
	t.Run("garbage", func(t *testing.T) { testDNSGarbage(t, reader) })
}

// testDNSTruncation registers 12 instances of a service and asks for them
// over UDP without EDNS0 (3 records and the TC bit, as Consul's
// udp_answer_limit), with EDNS0 (all) and over TCP (all).
func testDNSTruncation(t *testing.T, cc *consulCluster, addr string) {
	const n = 12
	for i := 0; i < n; i++ {
		_, err := cc.clients[0].Catalog().Register(&consul.CatalogRegistration{Node: fmt.Sprintf("big-%02d", i), Address: fmt.Sprintf("10.1.0.%d", i+1),
			Service: &consul.AgentService{ID: "big", Service: "big", Port: 9000}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	full := waitAnswer(t, addr, "big.service.consul.", dns.TypeSRV, func(m *dns.Msg) bool { return len(m.Answer) == n }, "tcp")
	if full.Truncated || countA(full.Extra) != n {
		t.Errorf("TCP SRV: TC %v, %d additional A records; want all %d, not truncated", full.Truncated, countA(full.Extra), n)
	}
	m := exchange(t, "udp", addr, question("big.service.consul.", dns.TypeA, 0))
	if len(m.Answer) != 3 || !m.Truncated {
		t.Errorf("UDP A without EDNS0: %d records, TC %v; want 3 and the TC bit", len(m.Answer), m.Truncated)
	}
	m = exchange(t, "udp", addr, question("big.service.consul.", dns.TypeSRV, 0))
	if len(m.Answer) == 0 || len(m.Answer) > 3 || !m.Truncated || countA(m.Extra) != len(m.Answer) {
		t.Errorf("UDP SRV without EDNS0: %d records, %d additional A, TC %v; want at most 3, one A each, the TC bit", len(m.Answer), countA(m.Extra), m.Truncated)
	}
	m = exchange(t, "udp", addr, question("big.service.consul.", dns.TypeA, 4096))
	if len(m.Answer) != n || m.Truncated || m.IsEdns0() == nil {
		t.Errorf("UDP A with EDNS0 4096: %d records, TC %v, OPT %v; want all %d", len(m.Answer), m.Truncated, m.IsEdns0() != nil, n)
	}
	// A resolver that honours TC retries over TCP and gets every record.
	cli := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	m, _, err := cli.Exchange(question("big.service.consul.", dns.TypeA, 0), addr)
	if err != nil || !m.Truncated {
		t.Fatalf("UDP: %v, %v", m, err)
	}
	cli.Net = "tcp"
	if m, _, err = cli.Exchange(question("big.service.consul.", dns.TypeA, 0), addr); err != nil || len(m.Answer) != n {
		t.Fatalf("TCP retry: %v records, %v; want %d", len(m.Answer), err, n)
	}
}

// testDNSDig asks with dig, as the "Done means" says.
func testDNSDig(t *testing.T, addr string) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("SKIPPED: dig is not installed (apt-get install -y dnsutils); the same questions are asked with miekg/dns above")
	}
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(dig, "@"+host, "-p", port, "+time=3", "+tries=1", "+short", "web.service.consul", "SRV").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	want := []string{"1 1 8080 m0.node.dc1.consul.", "1 2 8081 0a000002.addr.dc1.consul."}
	if !slices.Equal(lines, want) {
		t.Fatalf("dig web.service.consul SRV:\n%s\nwant %q (web-c is critical)", out, want)
	}
	if out, _ := exec.Command(dig, "@"+host, "-p", port, "+time=3", "+tries=1", "+short", "-x", "10.0.0.2").CombinedOutput(); strings.TrimSpace(string(out)) != "web.service.dc1.consul." {
		t.Fatalf("dig -x 10.0.0.2: %q, want web.service.dc1.consul.", out)
	}
	out, _ = exec.Command(dig, "@"+host, "-p", port, "+time=3", "+tries=1", "nope.service.consul", "A").CombinedOutput()
	if !strings.Contains(string(out), "status: NXDOMAIN") || !strings.Contains(string(out), "IN\tSOA\tns.consul. hostmaster.consul.") {
		t.Fatalf("dig nope.service.consul: want NXDOMAIN with the SOA:\n%s", out)
	}
}

// testDNSGarbage sends what is not a question, then checks the server still
// answers: malformed questions get FORMERR (or NOTIMP), noise is dropped.
func testDNSGarbage(t *testing.T, addr string) {
	hdr := func(opcode, qd int) []byte {
		b := make([]byte, 12)
		binary.BigEndian.PutUint16(b[0:], 0x1234)
		binary.BigEndian.PutUint16(b[2:], uint16(opcode<<11))
		binary.BigEndian.PutUint16(b[4:], uint16(qd))
		return b
	}
	q, _ := question("web.service.consul.", dns.TypeA, 0).Pack()
	long := hdr(0, 1)
	for i := 0; i < 5; i++ { // 5 labels of 63 bytes: a name over 255 octets
		long = append(long, 63)
		long = append(long, strings.Repeat("a", 63)...)
	}
	long = append(long, 0, 0, 1, 0, 1)
	for _, tc := range []struct {
		what  string
		pkt   []byte
		rcode int
	}{
		{"no question", hdr(0, 0), dns.RcodeFormatError},
		{"two questions", append(q[:4:4], append([]byte{0, 2}, q[6:]...)...), dns.RcodeFormatError},
		{"a question cut short", q[:len(q)-3], dns.RcodeFormatError},
		{"a name over 255 octets", long, dns.RcodeFormatError},
		{"an UPDATE", append(hdr(dns.OpcodeUpdate, 1), q[12:]...), dns.RcodeNotImplemented},
	} {
		if got := rawExchange(t, addr, tc.pkt); got != tc.rcode {
			t.Errorf("%s: rcode %s, want %s", tc.what, dns.RcodeToString[got], dns.RcodeToString[tc.rcode])
		}
	}
	r := rand.New(rand.NewPCG(17, 3))
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 300; i++ {
		b := make([]byte, r.IntN(700))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		conn.Write(b)
	}
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte{0xff, 0xff, 1, 2, 3}) // a frame longer than what follows
	tc.Close()
	idle, err := net.Dial("tcp", addr) // says nothing: the server closes it
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := idle.Read(make([]byte, 1)); err == nil || time.Since(start) > 9*time.Second {
		t.Errorf("a silent TCP connection: read %v after %v; want it closed by the server within its read timeout", err, time.Since(start))
	}
	for _, network := range []string{"udp", "tcp"} {
		if m := exchange(t, network, addr, question("web.service.consul.", dns.TypeSRV, 0)); len(m.Answer) != 2 {
			t.Errorf("after the garbage, %s: %v; want the 2 instances", network, m.Answer)
		}
	}
}

func question(name string, qtype uint16, edns uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	return m
}

func exchange(t *testing.T, network, addr string, q *dns.Msg) *dns.Msg {
	t.Helper()
	cli := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	m, _, err := cli.Exchange(q, addr)
	if err != nil && !(network == "udp" && m != nil) {
		t.Fatalf("%s %s over %s: %v", q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype], network, err)
	}
	return m
}

// waitAnswer asks until ok holds (the DNS reads are stale: a member
// answers once it has applied the writes), over UDP unless told.
func waitAnswer(t *testing.T, addr, name string, qtype uint16, ok func(*dns.Msg) bool, network ...string) *dns.Msg {
	t.Helper()
	net := "udp"
	if len(network) > 0 {
		net = network[0]
	}
	var last *dns.Msg
	err := waitFor(20*time.Second, 50*time.Millisecond, func() (bool, error) {
		last = exchange(t, net, addr, question(name, qtype, 0))
		return last.Rcode == dns.RcodeSuccess && ok(last), nil
	})
	if err != nil {
		t.Fatalf("%s %s: last answer %v: %v", name, dns.TypeToString[qtype], last, err)
	}
	return last
}

// rawExchange sends a raw UDP packet and returns the reply's code.
func rawExchange(t *testing.T, addr string, pkt []byte) int {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatalf("reply %x: %v", buf[:n], err)
	}
	return m.Rcode
}

// answerValues are the answer's addresses and SRV targets, sorted.
func answerValues(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.SRV:
			out = append(out, r.Target)
		case *dns.PTR:
			out = append(out, r.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

func additionalA(m *dns.Msg, name string) string {
	for _, rr := range m.Extra {
		if a, ok := rr.(*dns.A); ok && a.Hdr.Name == name {
			return a.A.String()
		}
	}
	return "none"
}

func countA(rrs []dns.RR) int {
	n := 0
	for _, rr := range rrs {
		if _, ok := rr.(*dns.A); ok {
			n++
		}
	}
	return n
}
