package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/pkg/v3/flags"
)

// unimplementedFlags are etcd's discovery and distributed tracing flags:
// accepted and checked as etcd checks them, but synod does not implement
// either feature yet, so using one refuses to start (silently bootstrapping
// without discovery or running without the traces would mislead).
type unimplementedFlags struct {
	endpoints                           *flags.UniqueStringsValue
	token, srv, srvName                 string
	fallback                            *flags.SelectiveStringValue
	tracing                             bool
	tracingRate                         int
	tracingAddr, tracingName, tracingID string
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
	fs.BoolVar(&u.tracing, "enable-distributed-tracing", false, "Enable distributed tracing (not implemented yet: refused).")
	fs.StringVar(&u.tracingAddr, "distributed-tracing-address", "localhost:4317", "Distributed tracing collector address.")
	fs.StringVar(&u.tracingName, "distributed-tracing-service-name", "etcd", "Distributed tracing service name, must be same across all etcd instances.")
	fs.StringVar(&u.tracingID, "distributed-tracing-instance-id", "", "Distributed tracing instance ID, must be unique per each etcd instance.")
	fs.IntVar(&u.tracingRate, "distributed-tracing-sampling-rate", 0, "Number of samples to collect per million spans for distributed tracing.")
}

func newBool(v bool) *boolValue { return (*boolValue)(&v) }

// check applies etcd's checks, then refuses discovery and tracing.
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
	if u.tracing && (u.tracingRate < 0 || u.tracingRate > 1000000) {
		what := "tracing sampling rate must be positive"
		if u.tracingRate > 1000000 {
			what = "tracing sampling rate must be less than 1000000"
		}
		return fmt.Errorf("distributed tracing configurition is not valid: (%s)", what)
	}
	switch {
	case len(endpoints) > 0:
		return fmt.Errorf("v3 discovery (--discovery-endpoints, --discovery-token) is %w: bootstrap with --initial-cluster", errNotImplemented)
	case u.srv != "" || u.srvName != "":
		return fmt.Errorf("DNS discovery (--discovery-srv) is %w: bootstrap with --initial-cluster", errNotImplemented)
	case u.tracing:
		return fmt.Errorf("distributed tracing (--enable-distributed-tracing) is %w", errNotImplemented)
	}
	return nil
}
