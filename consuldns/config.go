package consuldns

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Config is how the DNS interface answers (Consul's dns_config).
type Config struct {
	Domain         string        // the domain served, "consul." by default (--dns-domain)
	Datacenter     string        // the local datacenter (--consul-datacenter)
	NodeTTL        time.Duration // TTL of node records (--dns-node-ttl), 0 as Consul
	ServiceTTL     time.Duration // TTL of service records (--dns-service-ttl), 0 as Consul
	OnlyPassing    bool          // leave out warning instances too (--dns-only-passing)
	UDPAnswerLimit int           // answers of a UDP reply without EDNS0 (--dns-udp-answer-limit), 3 as Consul
	EnableTruncate bool          // set the TC bit on a trimmed reply (--dns-enable-truncate)
	NodeMetaTXT    bool          // a node's meta as TXT records in the additional section of A and SRV answers, as Consul
}

// Limits bound the server's work.
type Limits struct {
	MaxInFlight  int           // queries answered at once; over it, SERVFAIL (default 256)
	MaxTCPConns  int           // open TCP connections; more wait to be accepted (default 128)
	TCPIdle      time.Duration // a TCP connection idle this long is closed (default 8 s)
	QueryTimeout time.Duration // a query's catalog read (default 5 s)
}

// DefaultDomain is Consul's default domain.
const DefaultDomain = "consul."

// DefaultUDPAnswerLimit is Consul's default udp_answer_limit.
const DefaultUDPAnswerLimit = 3

// maxUDPAnswerLimit caps udp_answer_limit, as Consul does.
const maxUDPAnswerLimit = 8

// DefaultLimits are the bounds unless configured otherwise.
var DefaultLimits = Limits{MaxInFlight: 256, MaxTCPConns: 128, TCPIdle: 8 * time.Second, QueryTimeout: 5 * time.Second}

// withDefaults fills the zero fields with Consul's defaults and makes the
// domain a lower-case FQDN.
func (c Config) withDefaults() Config {
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	c.Domain = dns.Fqdn(strings.ToLower(c.Domain))
	if c.Datacenter == "" {
		c.Datacenter = "dc1"
	}
	if c.UDPAnswerLimit <= 0 {
		c.UDPAnswerLimit = DefaultUDPAnswerLimit
	}
	return c
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxInFlight > 0 {
		d.MaxInFlight = l.MaxInFlight
	}
	if l.MaxTCPConns > 0 {
		d.MaxTCPConns = l.MaxTCPConns
	}
	if l.TCPIdle > 0 {
		d.TCPIdle = l.TCPIdle
	}
	if l.QueryTimeout > 0 {
		d.QueryTimeout = l.QueryTimeout
	}
	return d
}
