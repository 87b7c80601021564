package main

import (
	"flag"
	"strings"

	"go.etcd.io/etcd/pkg/v3/flags"

	"github.com/synod-db/synod/server"
)

// urlFlags are etcd's URL list flags, parsed (and refused) by etcd's own
// flag type: comma-separated, deduplicated, http/https/unix/unixs only.
type urlFlags struct {
	listenClient, advertiseClient, listenPeer, advertisePeer, listenMetrics *flags.UniqueURLs
}

func (u *urlFlags) bind(fs *flag.FlagSet) {
	bind := func(to **flags.UniqueURLs, name, def, usage string) {
		*to = flags.NewUniqueURLsWithExceptions(def, "")
		fs.Var(*to, name, usage)
	}
	bind(&u.listenClient, "listen-client-urls", server.DefaultClientURL, "List of URLs to listen on for client traffic.")
	bind(&u.advertiseClient, "advertise-client-urls", server.DefaultClientURL, "List of this member's client URLs to advertise to the rest of the cluster.")
	bind(&u.listenPeer, "listen-peer-urls", server.DefaultPeerURL, "List of URLs to listen on for peer traffic.")
	bind(&u.advertisePeer, "initial-advertise-peer-urls", server.DefaultPeerURL, "List of this member's peer URLs to advertise to the rest of the cluster.")
	bind(&u.listenMetrics, "listen-metrics-urls", "", "List of URLs to listen on for the metrics and health endpoints (they are served on the client URLs too).")
}

// apply copies the parsed lists into c.
func (u *urlFlags) apply(c *server.Config) {
	c.ListenClientURLs = urlStrings(u.listenClient)
	c.AdvertiseClientURLs = urlStrings(u.advertiseClient)
	c.ListenPeerURLs = urlStrings(u.listenPeer)
	c.InitialAdvertisePeerURLs = urlStrings(u.advertisePeer)
	c.ListenMetricsURLs = urlStrings(u.listenMetrics)
}

// urlStrings is the flag's URLs, sorted (etcd's flag type keeps them so).
func urlStrings(u *flags.UniqueURLs) []string { return splitURLs(u.String()) }

// splitURLs splits a comma-separated list, dropping blanks.
func splitURLs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
