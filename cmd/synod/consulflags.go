package main

import (
	"flag"
	"fmt"
	"net/url"

	"github.com/synod-db/synod/server"
)

// defaultConsulDatacenter is the datacenter a member's Consul agent reports
// unless --consul-datacenter says otherwise (Consul's own default).
const defaultConsulDatacenter = "dc1"

// bindConsulFlags binds the Consul HTTP API's flags to c (docs/discovery.md).
func bindConsulFlags(fs *flag.FlagSet, c *server.ConsulConfig) {
	fs.StringVar(&c.ListenURL, "consul-listen-url", "", "URL (http://host:port) to serve Consul's HTTP API on (/v1/agent, /v1/catalog, /v1/health, /v1/status, ...); off unless set.")
	fs.StringVar(&c.Datacenter, "consul-datacenter", defaultConsulDatacenter, "Datacenter name the member's Consul agent reports.")
}

// checkConsulFlags refuses a --consul-listen-url that is not an http:// URL
// with a host and port.
func checkConsulFlags(c server.ConsulConfig) error {
	if c.ListenURL == "" {
		return nil
	}
	u, err := url.Parse(c.ListenURL)
	if err != nil || u.Scheme != "http" || u.Port() == "" || u.Path != "" {
		return fmt.Errorf("--consul-listen-url %q: want an http:// URL with a host and port", c.ListenURL)
	}
	if c.Datacenter == "" {
		return fmt.Errorf("--consul-datacenter must not be empty")
	}
	return nil
}
