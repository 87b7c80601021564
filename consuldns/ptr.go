package consuldns

import (
	"context"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// arpaZone is the reverse-lookup zone, served as Consul serves it.
const arpaZone = "arpa."

// ptrAnswer answers a reverse lookup as Consul does: the first node (by
// name) whose address the name reverses, as <node>.node.<dc>.<domain>;
// else the first service instance with that address, as
// <service>.service.<dc>.<domain>; else NXDOMAIN. Consul answers the PTR
// record whatever the question's type.
func (h *Handler) ptrAnswer(ctx context.Context, q dns.Question, m *dns.Msg) error {
	name := strings.ToLower(dns.Fqdn(q.Name))
	nodes, err := h.cat.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if rev, err := dns.ReverseAddr(n.Address); err == nil && rev == name {
			m.Answer = append(m.Answer, ptr(q.Name, nodeFQDN(n.Node, h.cfg.Datacenter, h.cfg.Domain)))
			return nil
		}
	}
	ip := ipFromARPA(name)
	if ip == nil {
		return errNameNotFound
	}
	svcs, err := h.cat.Instances(ctx)
	if err != nil {
		return err
	}
	for _, s := range svcs {
		if a := net.ParseIP(s.Address); a != nil && a.Equal(ip) {
			m.Answer = append(m.Answer, ptr(q.Name, s.Service+"."+kindService+"."+h.cfg.Datacenter+"."+h.cfg.Domain))
			return nil
		}
	}
	return errNameNotFound
}

func ptr(name, target string) *dns.PTR {
	return &dns.PTR{Hdr: header(name, dns.TypePTR, 0), Ptr: target}
}

// ipFromARPA reads the address of a reverse name: four decimal labels
// under in-addr.arpa, or 32 hex nibbles under ip6.arpa; nil otherwise.
func ipFromARPA(name string) net.IP {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return nil
		}
		for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
			labels[i], labels[j] = labels[j], labels[i]
		}
		return net.ParseIP(strings.Join(labels, ".")).To4()
	}
	rest, ok := strings.CutSuffix(name, ".ip6.arpa.")
	nibbles := strings.Split(rest, ".")
	if !ok || len(nibbles) != 32 {
		return nil
	}
	var b strings.Builder
	for i := len(nibbles) - 1; i >= 0; i-- {
		if len(nibbles[i]) != 1 {
			return nil
		}
		b.WriteString(nibbles[i])
		if i%4 == 0 && i > 0 {
			b.WriteByte(':')
		}
	}
	return net.ParseIP(b.String())
}
