package consuldns

import (
	"encoding/hex"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/synod-db/synod/catalog"
)

// SOA timers, Consul's defaults (dns_config.soa).
const (
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 86400
	soaMinTTL  = 0
)

// maxNameServers is how many servers the NS answer lists, as Consul.
const maxNameServers = 3

func seconds(d time.Duration) uint32 { return uint32(d / time.Second) }

func header(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// ipRecord is the A or AAAA record of ip named name, if the question's
// type asks for that family (SRV, ANY, NS and TXT take both, as Consul's);
// nil otherwise.
func ipRecord(qtype uint16, ip net.IP, name string, ttl uint32) dns.RR {
	both := qtype == dns.TypeSRV || qtype == dns.TypeANY || qtype == dns.TypeNS || qtype == dns.TypeTXT
	if v4 := ip.To4(); v4 != nil {
		if both || qtype == dns.TypeA {
			return &dns.A{Hdr: header(name, dns.TypeA, ttl), A: v4}
		}
		return nil
	}
	if both || qtype == dns.TypeAAAA {
		return &dns.AAAA{Hdr: header(name, dns.TypeAAAA, ttl), AAAA: ip}
	}
	return nil
}

// nodeFQDN is a node's canonical name, the target of SRV records.
func nodeFQDN(node, dc, domain string) string {
	return node + "." + kindNode + "." + dc + "." + domain
}

// addrFQDN is the name that encodes an address (<hex>.addr.<dc>.<domain>),
// the SRV target of an instance with an address of its own.
func addrFQDN(ip net.IP, dc, domain string) string {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return hex.EncodeToString(ip) + "." + kindAddr + "." + dc + "." + domain
}

// soa is the domain's SOA record; its serial is the time, as Consul's.
func soa(cfg Config, now time.Time) *dns.SOA {
	return &dns.SOA{Hdr: header(cfg.Domain, dns.TypeSOA, soaMinTTL), Ns: "ns." + cfg.Domain,
		Mbox: "hostmaster." + cfg.Domain, Serial: uint32(now.Unix()),
		Refresh: soaRefresh, Retry: soaRetry, Expire: soaExpire, Minttl: soaMinTTL}
}

// nameServers are the NS records of the domain, up to three servers
// (servers is already shuffled), with their addresses as glue.
func nameServers(cfg Config, servers []*catalog.Node) (ns, glue []dns.RR) {
	for _, n := range servers {
		if len(ns) == maxNameServers {
			break
		}
		if _, ok := dns.IsDomainName(n.Node); !ok || strings.ContainsAny(n.Node, " _") {
			continue // Consul skips nodes whose names are not valid host names
		}
		fqdn := strings.ToLower(nodeFQDN(n.Node, cfg.Datacenter, cfg.Domain))
		ns = append(ns, &dns.NS{Hdr: header(cfg.Domain, dns.TypeNS, seconds(cfg.NodeTTL)), Ns: fqdn})
		glue = append(glue, nodeAddressRecords(dns.TypeANY, n, fqdn, seconds(cfg.NodeTTL))...)
	}
	return ns, glue
}

// nodeAddressRecords is a node's address as the question's type asks for
// it: an A/AAAA record, or a CNAME when the address is a host name.
func nodeAddressRecords(qtype uint16, n *catalog.Node, name string, ttl uint32) []dns.RR {
	ip := net.ParseIP(n.Address)
	if ip == nil {
		if n.Address == "" {
			return nil
		}
		return []dns.RR{&dns.CNAME{Hdr: header(name, dns.TypeCNAME, ttl), Target: dns.Fqdn(n.Address)}}
	}
	if rr := ipRecord(qtype, ip, name, ttl); rr != nil {
		return []dns.RR{rr}
	}
	return nil
}

// metaTXT is a node's meta as TXT records, keys in order: key=value as RFC
// 1464 quotes it, or the bare value for keys starting with "rfc1035-".
func metaTXT(n *catalog.Node, name string, ttl uint32) []dns.RR {
	keys := make([]string, 0, len(n.Meta))
	for k := range n.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []dns.RR
	for _, k := range keys {
		txt := n.Meta[k]
		if !strings.HasPrefix(strings.ToLower(k), "rfc1035-") {
			txt = rfc1464(k, txt)
		}
		out = append(out, &dns.TXT{Hdr: header(name, dns.TypeTXT, ttl), Txt: []string{txt}})
	}
	return out
}

// rfc1464 quotes a key and value as RFC 1464 says: a backquote before each
// backquote, "=" and leading or trailing space of the key, and before each
// backquote of the value.
func rfc1464(key, value string) string {
	key = strings.NewReplacer("`", "``", "=", "`=").Replace(key)
	trimmed := strings.TrimLeft(key, " ")
	lead := len(key) - len(trimmed)
	core := strings.TrimRight(trimmed, " ")
	trail := len(trimmed) - len(core)
	key = strings.Repeat("` ", lead) + core + strings.Repeat("` ", trail)
	return key + "=" + strings.ReplaceAll(value, "`", "``")
}
