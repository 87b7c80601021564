package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/pkg/v3/flags"
)

// unimplementedFlags are etcd's discovery flags: accepted and checked as
// etcd checks them, but synod does not implement discovery yet, so using it
// refuses to start (silently bootstrapping without discovery would mislead).
type unimplementedFlags struct {
	endpoints           *flags.UniqueStringsValue
	token, srv, srvName string
	fallback            *flags.SelectiveStringValue
}

// errNotImplemented is wrapped by the refusal to use an unimplemented feature.
var errNotImplemented = errors.New("not implemented yet in synod")

func (u *unimplementedFlags) bind(fs *flag.FlagSet) {
	u.endpoints = flags.NewUniqueStringsValue("")
	fs.Var(u.endpoints, "discovery-endpoints", "V3 discovery: List of gRPC endpoints of the discovery service (not implemented yet).")
	fs.StringVar(&u.token, "discovery-token", "", "V3 discovery: discovery token for the etcd cluster to be bootstrapped (not implemented yet).")
	fs.StringVar(&u.srv, "discovery-srv", "", "DNS srv domain used to bootstrap the cluster (not implemented yet).")
	fs.StringVar(&u.srvName, "discovery-srv-name", "", "Suffix to the dns srv name queried when bootstrapping (not implemented yet).")
	u.fallback = flags.NewSelectiveStringValue("exit", "proxy")
	fs.Var(u.fallback, "discovery-fallback", "Expected behavior ('exit') when discovery services fails.")
	for _, d := range []struct {
		name string
		def  time.Duration
	}{{"discovery-dial-timeout", 2 * time.Second}, {"discovery-request-timeout", 5 * time.Second},
		{"discovery-keepalive-time", 2 * time.Second}, {"discovery-keepalive-timeout", 6 * time.Second}} {
		fs.Var((*durationValue)(&d.def), d.name, "V3 discovery client setting (discovery is not implemented yet).")
	}
	fs.Var(newBool(true), "discovery-insecure-transport", "V3 discovery: disable transport security for client connections.")
	fs.Var(newBool(false), "discovery-insecure-skip-tls-verify", "V3 discovery: skip server certificate verification.")
	for _, name := range []string{"discovery-cert", "discovery-key", "discovery-cacert", "discovery-user", "discovery-password"} {
		fs.Var(newStringValue(""), name, "V3 discovery client setting (discovery is not implemented yet).")
	}
}

func newBool(v bool) *boolValue { return (*boolValue)(&v) }

// check applies etcd's checks, then refuses discovery.
func (u *unimplementedFlags) check() error {
	if u.fallback.String() == "proxy" {
		return fmt.Errorf("v2 proxy is deprecated, and --discovery-fallback can't be configured as %q", "proxy")
	}
	endpoints := strings.Split(u.endpoints.String(), ",")
	if u.endpoints.String() == "" {
		endpoints = nil
	}
	if (u.token != "") != (len(endpoints) > 0) {
		return errors.New("both --discovery-token and --discovery-endpoints must be set")
	}
	switch {
	case len(endpoints) > 0:
		return fmt.Errorf("v3 discovery (--discovery-endpoints, --discovery-token) is %w: bootstrap with --initial-cluster", errNotImplemented)
	case u.srv != "" || u.srvName != "":
		return fmt.Errorf("DNS discovery (--discovery-srv) is %w: bootstrap with --initial-cluster", errNotImplemented)
	}
	return nil
}
