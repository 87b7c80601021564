package consuldns

import (
	"encoding/hex"
	"errors"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// The kinds of name served (the label before the datacenter and domain).
const (
	kindService = "service"
	kindNode    = "node"
	kindAddr    = "addr"
)

// otherKinds are Consul's other kinds of name (Connect, virtual IPs,
// ingress gateways, prepared queries): recognised, so that parsing stops
// at them as Consul's does, and answered NXDOMAIN (synod has none).
var otherKinds = map[string]bool{"connect": true, "virtual": true, "ingress": true, "query": true}

// errNameNotFound is a name the domain does not hold: NXDOMAIN with the SOA.
var errNameNotFound = errors.New("consuldns: name not found")

// errNoData is a name that exists without records of the asked type:
// NOERROR, an empty answer and the SOA (RFC 2308 section 2.2).
var errNoData = errors.New("consuldns: no records of that type")

// lookup is a parsed name.
type lookup struct {
	kind    string // kindService, kindNode or kindAddr
	service string // service name (kindService)
	tag     string // tag to filter on, "" for any (kindService)
	node    string // node name (kindNode)
	dc      string // datacenter asked for
	addr    net.IP // the encoded address (kindAddr)
}

// inZone reports whether a question's name is in the domain (a lower case
// FQDN), compared without case.
func inZone(name, domain string) bool {
	return dns.IsSubDomain(domain, strings.ToLower(dns.Fqdn(name)))
}

// parseName reads a name of the domain as Consul does: the rightmost kind
// label splits it into the query's parts (left) and its locality (right);
// for SRV a label starting with "_" stands for "service" when there is no
// kind label. name is an FQDN in the domain (a lower case FQDN); labels
// are compared without case, and service and node names keep the case
// they are asked in.
func parseName(name, domain, localDC string, qtype uint16) (lookup, error) {
	if len(name) < len(domain) {
		return lookup{}, errNameNotFound
	}
	labels := dns.SplitDomainName(name[:len(name)-len(domain)])
	kind, parts, suffixes := "", []string(nil), []string(nil)
	for i := len(labels) - 1; i >= 0 && kind == ""; i-- {
		switch l := strings.ToLower(labels[i]); {
		case l == kindService || l == kindNode || l == kindAddr || otherKinds[l]:
			kind, parts, suffixes = l, labels[:i], labels[i+1:]
		case qtype == dns.TypeSRV && strings.HasPrefix(l, "_"):
			kind, parts, suffixes = kindService, labels[:i+1], labels[i+1:]
		}
	}
	switch kind {
	case kindService:
		return parseService(parts, suffixes, localDC)
	case kindNode:
		dc, err := parseLocality(suffixes, localDC)
		if err != nil || len(parts) == 0 {
			return lookup{}, errNameNotFound
		}
		return lookup{kind: kindNode, node: strings.Join(parts, "."), dc: dc}, nil
	case kindAddr:
		return parseAddr(parts, localDC)
	}
	return lookup{}, errNameNotFound
}

// parseService reads tag.name, the RFC 2782 _name._tag (where _tcp means
// any tag) and a dotted tag (a.b.name: tag "a.b").
func parseService(parts, suffixes []string, localDC string) (lookup, error) {
	n := len(parts)
	dc, err := parseLocality(suffixes, localDC)
	if err != nil || n == 0 {
		return lookup{}, errNameNotFound
	}
	l := lookup{kind: kindService, dc: dc, service: parts[n-1]}
	switch {
	case n == 2 && strings.HasPrefix(parts[0], "_") && strings.HasPrefix(parts[1], "_"):
		l.service, l.tag = parts[0][1:], parts[1][1:]
		if strings.EqualFold(l.tag, "tcp") {
			l.tag = ""
		}
	case n >= 2:
		l.tag = strings.Join(parts[:n-1], ".")
	}
	if l.service == "" {
		return lookup{}, errNameNotFound
	}
	return l, nil
}

// parseLocality reads the labels between the kind and the domain: none
// (the local datacenter), "<dc>" or "<dc>.dc". A peer ("<peer>.peer") or
// another datacenter is not served: NXDOMAIN, as Consul answers a
// datacenter it has no path to.
func parseLocality(suffixes []string, localDC string) (string, error) {
	dc := localDC
	switch {
	case len(suffixes) == 0:
	case len(suffixes) == 1:
		dc = suffixes[0]
	case len(suffixes) == 2 && strings.EqualFold(suffixes[1], "dc"):
		dc = suffixes[0]
	default:
		return "", errNameNotFound
	}
	if !strings.EqualFold(dc, localDC) {
		return "", errNameNotFound
	}
	return localDC, nil
}

// parseAddr reads <hex>.addr[.<dc>]: 8 hex digits for an IPv4 address, 32
// for IPv6. The datacenter is not checked, as in Consul.
func parseAddr(parts []string, localDC string) (lookup, error) {
	if len(parts) != 1 {
		return lookup{}, errNameNotFound
	}
	b, err := hex.DecodeString(parts[0])
	if err != nil || (len(b) != net.IPv4len && len(b) != net.IPv6len) {
		return lookup{}, errNameNotFound
	}
	return lookup{kind: kindAddr, addr: net.IP(b), dc: localDC}, nil
}
