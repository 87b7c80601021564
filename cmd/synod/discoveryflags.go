package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/pkg/v3/flags"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3discovery"

	"github.com/synod-db/synod/discovery"
	"github.com/synod-db/synod/etcdlog"
	"github.com/synod-db/synod/server"
)

// testDNSServerEnv names a DNS server (host:port, UDP) that synod asks
// instead of the system's, for discovery and for peer names: a test-only
// setting of synod's own (etcd has none), so that process-level tests can
// serve SRV and A records (docs/configuration.md).
const testDNSServerEnv = "SYNOD_TEST_DNS_SERVER"

// errConflictBootstrap is etcd's refusal of two ways to bootstrap at once.
var errConflictBootstrap = errors.New("multiple discovery or bootstrap flags are set. " +
	"Choose one of \"initial-cluster\", \"discovery-endpoints\" or \"discovery-srv\"")

// discoveryFlags are etcd's discovery flags: DNS SRV (--discovery-srv) and
// the v3 discovery service (--discovery-endpoints, --discovery-token and
// its client settings).
type discoveryFlags struct {
	endpoints                       *flags.UniqueStringsValue
	token, srv, srvName             string
	fallback                        *flags.SelectiveStringValue
	dial, request, kaTime, kaTimout durationValue
	insecure, skipVerify            boolValue
	cert, key, cacert, user, pass   stringValue
}

func (d *discoveryFlags) bind(fs *flag.FlagSet) {
	d.endpoints = flags.NewUniqueStringsValue("")
	fs.Var(d.endpoints, "discovery-endpoints", "V3 discovery: List of gRPC endpoints of the discovery service.")
	fs.StringVar(&d.token, "discovery-token", "", "V3 discovery: discovery token for the etcd cluster to be bootstrapped.")
	fs.StringVar(&d.srv, "discovery-srv", "", "DNS srv domain used to bootstrap the cluster.")
	fs.StringVar(&d.srvName, "discovery-srv-name", "", "Suffix to the dns srv name queried when bootstrapping.")
	d.fallback = flags.NewSelectiveStringValue("exit", "proxy")
	fs.Var(d.fallback, "discovery-fallback", "Expected behavior ('exit') when discovery services fails.")
	d.dial, d.request = durationValue(2*time.Second), durationValue(5*time.Second)
	d.kaTime, d.kaTimout = durationValue(2*time.Second), durationValue(6*time.Second)
	fs.Var(&d.dial, "discovery-dial-timeout", "V3 discovery: dial timeout for client connections.")
	fs.Var(&d.request, "discovery-request-timeout", "V3 discovery: timeout for discovery requests (excluding dial timeout).")
	fs.Var(&d.kaTime, "discovery-keepalive-time", "V3 discovery: keepalive time for client connections.")
	fs.Var(&d.kaTimout, "discovery-keepalive-timeout", "V3 discovery: keepalive timeout for client connections.")
	d.insecure = true
	fs.Var(&d.insecure, "discovery-insecure-transport", "V3 discovery: disable transport security for client connections.")
	fs.Var(&d.skipVerify, "discovery-insecure-skip-tls-verify", "V3 discovery: skip server certificate verification.")
	fs.Var(&d.cert, "discovery-cert", "V3 discovery: identify secure client using this TLS certificate file.")
	fs.Var(&d.key, "discovery-key", "V3 discovery: identify secure client using this TLS key file.")
	fs.Var(&d.cacert, "discovery-cacert", "V3 discovery: verify certificates of TLS-enabled secure servers using this CA bundle.")
	fs.Var(&d.user, "discovery-user", "V3 discovery: username[:password] for authentication.")
	fs.Var(&d.pass, "discovery-password", "V3 discovery: password for authentication.")
}

// list is --discovery-endpoints as a list (none when empty).
func (d *discoveryFlags) list() []string {
	if d.endpoints.String() == "" {
		return nil
	}
	return strings.Split(d.endpoints.String(), ",")
}

// check applies etcd's checks: one way to bootstrap, a token with
// endpoints, no v2 proxy fallback.
func (d *discoveryFlags) check(initialCluster string) error {
	if d.fallback.String() == "proxy" {
		return fmt.Errorf("v2 proxy is deprecated, and --discovery-fallback can't be configured as %q", "proxy")
	}
	n := 0
	for _, set := range []bool{initialCluster != "", d.srv != "", len(d.list()) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errConflictBootstrap
	}
	if (d.token != "") != (len(d.list()) > 0) {
		return errors.New("both --discovery-token and --discovery-endpoints must be set")
	}
	return nil
}

// apply sets the member's discovery and, with SYNOD_TEST_DNS_SERVER, its
// resolver.
func (d *discoveryFlags) apply(c *server.Config, logger *slog.Logger) {
	if addr := os.Getenv(testDNSServerEnv); addr != "" {
		c.Resolver = discovery.UseDNSServer(addr)
	}
	switch {
	case d.srv != "":
		s := discovery.SRV{Domain: d.srv, ServiceName: d.srvName}
		if c.Resolver != nil {
			s.Resolver = c.Resolver
		}
		c.Discovery = s
	case len(d.list()) > 0:
		c.Discovery = discovery.V3{Config: d.config(), Logger: discovery.ZapLogger(logger)}
	}
}

// config is the v3 discovery client's configuration, as etcd builds it.
func (d *discoveryFlags) config() v3discovery.DiscoveryConfig {
	return v3discovery.DiscoveryConfig{Token: d.token, ConfigSpec: clientv3.ConfigSpec{
		Endpoints: d.list(), DialTimeout: time.Duration(d.dial), RequestTimeout: time.Duration(d.request),
		KeepAliveTime: time.Duration(d.kaTime), KeepAliveTimeout: time.Duration(d.kaTimout),
		Secure: &clientv3.SecureConfig{Cert: string(d.cert), Key: string(d.key), Cacert: string(d.cacert),
			InsecureTransport: bool(d.insecure), InsecureSkipVerify: bool(d.skipVerify)},
		Auth: &clientv3.AuthConfig{Username: string(d.user), Password: string(d.pass)},
	}}
}

// warnDiscoveryFailure logs what etcd logs when discovery failed: two
// warnings for v3 discovery (a full cluster, a missing size key: most often
// a reused token), a fatal line for DNS SRV.
func warnDiscoveryFailure(logger *slog.Logger, err error) {
	var derr *discovery.Error
	var serr *discovery.SetupError
	switch {
	case errors.As(err, &derr):
		logger.Warn("failed to bootstrap; discovery token was already used", "error", err.Error())
		logger.Warn("do not reuse discovery token; generate a new one to bootstrap a cluster")
	case errors.As(err, &serr):
		logger.Log(context.Background(), etcdlog.LevelFatal, "discovery failed", "error", err.Error())
	}
}
