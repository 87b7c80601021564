// Package consulapi serves Consul's HTTP API (/v1/...) over synod's
// replicated store: routing, Consul's status codes, error texts and
// headers, consistency modes, blocking queries woken by etcd watches, and
// one file per endpoint group. It holds no state of its own: it reads and
// writes the keys package catalog names through an etcd client of the
// member (clientv3.KV, clientv3.Watcher, clientv3.Cluster), so it shares
// every gate of the etcd API. See docs/discovery.md.
package consulapi
