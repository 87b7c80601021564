package main

import (
	"strings"
	"testing"

	"github.com/synod-db/synod/etcdapi"
	"github.com/synod-db/synod/server"
	"github.com/synod-db/synod/watch"
)

// TestAuditAndLimitFlags: the audit log and bound flags, their defaults,
// the environment, and that bad values are refused.
func TestAuditAndLimitFlags(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditLog != "" || c.AuditLogMaxSize != server.DefaultAuditLogMaxSize || c.AuditLogMaxBackups != server.DefaultAuditLogMaxBackups ||
		c.MaxConcurrentStreams != etcdapi.DefaultMaxConcurrentStreams || c.MaxClientConnections != 0 || c.MaxWatchers != watch.DefaultMaxWatchers {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = parseServe(t, []string{"--audit-log=/var/log/synod-audit.log", "--audit-log-max-size=5", "--max-concurrent-streams=7",
		"--max-client-connections=100"}, map[string]string{"ETCD_AUDIT_LOG_MAX_BACKUPS": "2", "SYNOD_MAX_WATCHERS_PER_STREAM": "9"})
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditLog != "/var/log/synod-audit.log" || c.AuditLogMaxSize != 5 || c.AuditLogMaxBackups != 2 ||
		c.MaxConcurrentStreams != 7 || c.MaxClientConnections != 100 || c.MaxWatchers != 9 {
		t.Fatalf("parsed: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := parseServe(t, []string{"--max-concurrent-streams=-1"}, nil); err == nil {
		t.Fatal("a negative --max-concurrent-streams was accepted")
	}
	c, _ = parseServe(t, []string{"--max-client-connections=-1"}, nil)
	if err := c.Validate(); err == nil {
		t.Fatal("a negative --max-client-connections validated")
	}
}

// TestTLSExtraFlags: CRL files, allowed peer names and the maximum TLS
// version reach the configuration; a maximum below the minimum is refused.
func TestTLSExtraFlags(t *testing.T) {
	c, err := parseServe(t, []string{"--client-crl-file=/c.crl", "--peer-crl-file=/p.crl", "--peer-cert-allowed-cn=m1,m2",
		"--tls-max-version=TLS1.3"}, map[string]string{"ETCD_PEER_CERT_ALLOWED_HOSTNAME": "h"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientTLS.CRLFile != "/c.crl" || c.PeerTLS.CRLFile != "/p.crl" || c.PeerTLS.AllowedCN != "m1,m2" ||
		c.PeerTLS.AllowedHostname != "h" || c.TLSMaxVersion != "TLS1.3" {
		t.Fatalf("parsed: %+v %+v %q", c.ClientTLS, c.PeerTLS, c.TLSMaxVersion)
	}
	c, _ = parseServe(t, []string{"--tls-min-version=TLS1.3", "--tls-max-version=TLS1.2"}, nil)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "min version (TLS1.3) is greater than max version (TLS1.2)") {
		t.Fatalf("max below min: %v", err)
	}
	c, _ = parseServe(t, []string{"--tls-max-version=TLS1.1"}, nil)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--tls-max-version") {
		t.Fatalf("bad max version: %v", err)
	}
}
