package consuldns

import (
	"fmt"
	"net"

	"github.com/miekg/dns"

	"github.com/synod-db/synod/catalog"
)

// serviceAnswer fills msg with the records of a service's instances (in
// the order given: the caller shuffles them), as Consul builds them: SRV
// records with their targets' addresses in the additional section, or
// address records; duplicates left out. It returns errNoData when no
// instance has a record of the asked type.
func serviceAnswer(cfg Config, q dns.Question, l lookup, entries []*catalog.ServiceEntry, msg *dns.Msg) error {
	if q.Qtype == dns.TypeSRV {
		seen := map[string]bool{}
		for _, e := range entries {
			key := fmt.Sprintf("%s:%s:%d", e.Node.Node, e.Service.Address, e.Service.Port)
			if seen[key] {
				continue
			}
			seen[key] = true
			ans, extra := instanceRecords(cfg, q, l, e)
			msg.Answer = append(msg.Answer, ans...)
			msg.Extra = append(msg.Extra, extra...)
			if cfg.NodeMetaTXT && len(ans) > 0 {
				msg.Extra = append(msg.Extra, metaTXT(e.Node, nodeFQDN(e.Node.Node, l.dc, cfg.Domain), seconds(cfg.ServiceTTL))...)
			}
		}
	} else {
		addressAnswer(cfg, q, l, entries, msg)
	}
	if len(msg.Answer) == 0 {
		return errNoData
	}
	return nil
}

// addressAnswer adds one address record per distinct address; CNAMEs (to
// instances with a host name for an address) are answered only when no
// instance has an address record, as Consul does.
func addressAnswer(cfg Config, q dns.Question, l lookup, entries []*catalog.ServiceEntry, msg *dns.Msg) {
	seen := map[string]bool{}
	var cname []dns.RR
	for _, e := range entries {
		recs, _ := instanceRecords(cfg, q, l, e)
		if len(recs) == 0 || seen[recs[0].String()] {
			continue
		}
		seen[recs[0].String()] = true
		if _, ok := recs[0].(*dns.CNAME); ok {
			if cname == nil {
				cname = recs
			}
			continue
		}
		msg.Answer = append(msg.Answer, recs...)
	}
	if len(msg.Answer) == 0 {
		msg.Answer = cname
	}
}

// instanceRecords are one instance's records, following Consul's choice of
// address: the service's own address when it has one (an IP: SRV target
// <hex>.addr.<dc>.<domain>; a host name: a CNAME, or the SRV target
// itself), else the node's (an IP: SRV target <node>.node.<dc>.<domain>).
func instanceRecords(cfg Config, q dns.Question, l lookup, e *catalog.ServiceEntry) (answer, extra []dns.RR) {
	svcAddr, nodeAddr := e.Service.Address, e.Node.Address
	nodeIP, svcIP := net.ParseIP(nodeAddr), net.ParseIP(svcAddr)
	switch {
	case svcAddr == "" && nodeAddr == "":
		return nil, nil
	case svcAddr == "" && nodeIP != nil:
		return ipTarget(cfg, q, e, nodeIP, nodeFQDN(e.Node.Node, l.dc, cfg.Domain))
	case svcAddr == "":
		return hostTarget(cfg, q, e, nodeAddr)
	case svcIP != nil:
		return ipTarget(cfg, q, e, svcIP, addrFQDN(svcIP, l.dc, cfg.Domain))
	case dns.Fqdn(svcAddr) == q.Name && nodeIP != nil:
		return ipTarget(cfg, q, e, nodeIP, nodeFQDN(e.Node.Node, l.dc, cfg.Domain))
	}
	return hostTarget(cfg, q, e, svcAddr)
}

// ipTarget is an SRV record to target with target's address record in the
// additional section, or for other types the address record itself.
func ipTarget(cfg Config, q dns.Question, e *catalog.ServiceEntry, ip net.IP, target string) (answer, extra []dns.RR) {
	ttl := seconds(cfg.ServiceTTL)
	rr := ipRecord(q.Qtype, ip, q.Name, ttl)
	if rr == nil {
		return nil, nil
	}
	if q.Qtype != dns.TypeSRV {
		return []dns.RR{rr}, nil
	}
	rr.Header().Name = target
	return []dns.RR{srv(q.Name, ttl, e, target)}, []dns.RR{rr}
}

// hostTarget answers an instance whose address is a host name: its SRV
// target, or a CNAME to it (not resolved further: synod has no recursors).
func hostTarget(cfg Config, q dns.Question, e *catalog.ServiceEntry, host string) (answer, extra []dns.RR) {
	ttl := seconds(cfg.ServiceTTL)
	if q.Qtype == dns.TypeSRV {
		return []dns.RR{srv(q.Name, ttl, e, dns.Fqdn(host))}, nil
	}
	return []dns.RR{&dns.CNAME{Hdr: header(q.Name, dns.TypeCNAME, ttl), Target: dns.Fqdn(host)}}, nil
}

func srv(name string, ttl uint32, e *catalog.ServiceEntry, target string) *dns.SRV {
	return &dns.SRV{Hdr: header(name, dns.TypeSRV, ttl), Priority: 1, Weight: weight(e),
		Port: uint16(e.Service.Port), Target: target}
}

// weight is an instance's SRV weight: its Weights.Passing or
// Weights.Warning by the aggregate of its checks (both 1 when none are
// set), 0 for critical ones (never answered).
func weight(e *catalog.ServiceEntry) uint16 {
	w := e.Service.Weights
	if w == (catalog.Weights{}) {
		w = catalog.Weights{Passing: 1, Warning: 1}
	}
	switch catalog.Aggregate(e.Checks) {
	case catalog.StatusPassing:
		return uint16(w.Passing)
	case catalog.StatusWarning:
		return uint16(w.Warning)
	}
	return 0
}
