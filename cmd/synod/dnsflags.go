package main

import (
	"flag"
	"fmt"
	"net"
	"strconv"

	"github.com/synod-db/synod/consuldns"
	"github.com/synod-db/synod/server"
)

// devDNSPortOffset puts a dev member's DNS port 100 above its Consul HTTP
// port: 8600 (Consul's DNS port), 8601 and 8602.
const devDNSPortOffset = 100

// bindDNSFlags binds the Consul DNS interface's flags to c
// (docs/discovery.md, "DNS").
func bindDNSFlags(fs *flag.FlagSet, c *server.DNSConfig) {
	fs.StringVar(&c.ListenAddr, "dns-listen-addr", "", "host:port to serve Consul's DNS interface on, over UDP and TCP (web.service.consul, node1.node.consul); off unless set.")
	fs.StringVar(&c.Answers.Domain, "dns-domain", consuldns.DefaultDomain, "Domain the DNS interface answers for.")
	fs.DurationVar(&c.Answers.NodeTTL, "dns-node-ttl", 0, "TTL of node records (0, as Consul: not cached).")
	fs.DurationVar(&c.Answers.ServiceTTL, "dns-service-ttl", 0, "TTL of service records (0, as Consul: not cached).")
	fs.BoolVar(&c.Answers.OnlyPassing, "dns-only-passing", false, "Leave out instances with a warning check too (critical ones always are).")
	fs.IntVar(&c.Answers.UDPAnswerLimit, "dns-udp-answer-limit", consuldns.DefaultUDPAnswerLimit, "Records of a UDP answer without EDNS0 (1 to 8).")
	fs.BoolVar(&c.Answers.EnableTruncate, "dns-enable-truncate", true, "Set the TC bit on a UDP answer that was cut, so resolvers retry over TCP.")
	fs.BoolVar(&c.AllowStale, "dns-allow-stale", true, "Answer from the member's copy of the catalog (as Consul's allow_stale); false makes every answer a linearizable read.")
	c.Answers.NodeMetaTXT = true
}

// checkDNSFlags refuses a --dns-listen-addr that is not host:port, and
// bounds out of range.
func checkDNSFlags(c server.DNSConfig) error {
	if c.ListenAddr != "" {
		if _, port, err := net.SplitHostPort(c.ListenAddr); err != nil || port == "" {
			return fmt.Errorf("--dns-listen-addr %q: want host:port", c.ListenAddr)
		}
	}
	if c.Answers.UDPAnswerLimit < 1 || c.Answers.UDPAnswerLimit > 8 {
		return fmt.Errorf("--dns-udp-answer-limit %d: want 1 to 8", c.Answers.UDPAnswerLimit)
	}
	if c.Answers.NodeTTL < 0 || c.Answers.ServiceTTL < 0 {
		return fmt.Errorf("--dns-node-ttl and --dns-service-ttl must not be negative")
	}
	if c.Answers.Domain == "" {
		return fmt.Errorf("--dns-domain must not be empty")
	}
	return nil
}

// devDNSConfig is a dev member's DNS interface, with the flags' defaults.
func devDNSConfig(consulPort int) server.DNSConfig {
	return server.DNSConfig{ListenAddr: "127.0.0.1:" + strconv.Itoa(consulPort+devDNSPortOffset), AllowStale: true,
		Answers: consuldns.Config{Domain: consuldns.DefaultDomain, UDPAnswerLimit: consuldns.DefaultUDPAnswerLimit,
			EnableTruncate: true, NodeMetaTXT: true}}
}
