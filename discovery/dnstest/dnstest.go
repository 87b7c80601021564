// Package dnstest is a DNS server for tests: it answers SRV and A queries
// from records the test sets (and changes) while it runs, on a loopback UDP
// port. Point synod at it with discovery.UseDNSServer(s.Addr()).
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Target is one SRV record's target.
type Target struct {
	Host string // a name the server answers A queries for
	Port uint16
}

// Server is a running test DNS server.
type Server struct {
	dns *dns.Server
	pc  net.PacketConn

	mu   sync.Mutex
	a    map[string][]net.IP
	srvs map[string][]Target
}

// Start serves on a loopback UDP port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{pc: pc, a: map[string][]net.IP{}, srvs: map[string][]Target{}}
	started := make(chan struct{})
	s.dns = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.answer), NotifyStartedFunc: func() { close(started) }}
	go s.dns.ActivateAndServe() //nolint:errcheck // ends with Shutdown
	<-started
	t.Cleanup(func() { _ = s.dns.Shutdown() })
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// SetA makes name resolve to ips (none: the name does not exist).
func (s *Server) SetA(name string, ips ...string) {
	var parsed []net.IP
	for _, ip := range ips {
		parsed = append(parsed, net.ParseIP(ip).To4())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a[dns.Fqdn(strings.ToLower(name))] = parsed
}

// SetSRV sets the SRV records of name (e.g. _etcd-server._tcp.example.test).
func (s *Server) SetSRV(name string, targets ...Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srvs[dns.Fqdn(strings.ToLower(name))] = targets
}

// answer replies from the records (SRV weights 0, so Go keeps their
// order): NXDOMAIN for a name with none of any
// type, an empty answer for a known name asked another type.
func (s *Server) answer(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	known := false
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		ips, isA := s.a[name]
		targets, isSRV := s.srvs[name]
		known = known || (isA && len(ips) > 0) || (isSRV && len(targets) > 0)
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 0}
		switch q.Qtype {
		case dns.TypeA:
			for _, ip := range ips {
				h := hdr
				h.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: h, A: ip})
			}
		case dns.TypeSRV:
			for _, t := range targets {
				h := hdr
				h.Rrtype = dns.TypeSRV
				m.Answer = append(m.Answer, &dns.SRV{Hdr: h, Priority: 0, Weight: 0, Port: t.Port, Target: dns.Fqdn(t.Host)})
			}
		}
	}
	s.mu.Unlock()
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}
