// Package consuldns serves Consul's DNS interface (web.service.consul,
// _web._tcp.service.consul, node1.node.consul, ...) over the catalog, with
// github.com/miekg/dns for the wire format. The names, answers, bounds and
// every difference from Consul are in docs/discovery.md ("DNS").
//
// The answer to a question is built by pure functions (name parsing, record
// building, trimming) from what a Catalog returns; Handler is the
// dns.Handler that puts them together, and Server the UDP and TCP listeners
// with their bounds.
package consuldns
