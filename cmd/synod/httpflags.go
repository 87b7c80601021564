package main

import (
	"flag"
	"strconv"

	"go.etcd.io/etcd/pkg/v3/flags"

	"github.com/synod-db/synod/server"
)

// bindHTTPFlags binds etcd's flags for the HTTP side of the client URLs
// (the JSON gateway and its access control) to c. The list flags use
// etcd's own flag types, so values are checked, and refused, in etcd's
// words.
func bindHTTPFlags(fs *flag.FlagSet, c *server.HTTPConfig) {
	c.CORS, c.HostWhitelist = []string{"*"}, []string{"*"}
	fs.Var(&listFlag{v: flags.NewUniqueURLsWithExceptions("", ""), to: &c.ListenClientHTTPURLs}, "listen-client-http-urls",
		"List of URLs to listen on for http only client traffic. Enabling this flag removes http services from --listen-client-urls.")
	fs.Var(&listFlag{v: flags.NewUniqueURLsWithExceptions("*", "*"), to: &c.CORS}, "cors",
		"Comma-separated white list of origins for CORS, or cross-origin resource sharing, (empty or * means allow all)")
	fs.Var(&listFlag{v: flags.NewUniqueStringsValue("*"), to: &c.HostWhitelist}, "host-whitelist",
		"Comma-separated acceptable hostnames from HTTP client requests, if server is not secure (empty means allow all).")
	fs.Var(&notFlag{to: &c.DisableGateway}, "enable-grpc-gateway", "Enable GRPC gateway (etcd's JSON API over HTTP under /v3/).")
}

// listFlag is one of etcd's list flag values that also keeps its values,
// sorted, in a slice.
type listFlag struct {
	v  flag.Value
	to *[]string
}

// Set parses s with etcd's flag type, then stores the result.
func (l *listFlag) Set(s string) error {
	if err := l.v.Set(s); err != nil {
		return err
	}
	*l.to = splitURLs(l.v.String()) // etcd's flag types print their values sorted
	return nil
}

// String is the flag's current value.
func (l *listFlag) String() string {
	if l == nil || l.v == nil {
		return ""
	}
	return l.v.String()
}

// notFlag is a boolean flag stored negated (etcd's --enable-X over a
// Disable field whose zero value is etcd's default).
type notFlag struct{ to *bool }

// Set parses a boolean and stores its negation.
func (n *notFlag) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*n.to = !b
	return nil
}

// String is the flag's current value.
func (n *notFlag) String() string {
	if n == nil || n.to == nil {
		return "true"
	}
	if *n.to {
		return "false"
	}
	return "true"
}

// IsBoolFlag lets --enable-grpc-gateway stand without a value.
func (n *notFlag) IsBoolFlag() bool { return true }
