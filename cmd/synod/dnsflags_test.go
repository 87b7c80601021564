package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/synod-db/synod/server"
)

func TestDevDNSPorts(t *testing.T) {
	var got []string
	for _, c := range devConfigs(t.TempDir()) {
		got = append(got, c.DNS.ListenAddr)
		if !c.DNS.AllowStale || !c.DNS.Answers.EnableTruncate || c.DNS.Answers.UDPAnswerLimit != 3 || c.DNS.Answers.Domain != "consul." {
			t.Errorf("%s: DNS config %+v, want the flags' defaults", c.Name, c.DNS)
		}
	}
	if strings.Join(got, ",") != "127.0.0.1:8600,127.0.0.1:8601,127.0.0.1:8602" {
		t.Fatalf("dev DNS addresses = %v, want 8600, 8601, 8602", got)
	}
}

func TestDNSFlags(t *testing.T) {
	parse := func(args ...string) (server.DNSConfig, error) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c server.DNSConfig
		bindDNSFlags(fs, &c)
		if err := fs.Parse(args); err != nil {
			return c, err
		}
		return c, checkDNSFlags(c)
	}
	c, err := parse()
	if err != nil || c.ListenAddr != "" || !c.AllowStale || c.Answers.NodeTTL != 0 || c.Answers.ServiceTTL != 0 || c.Answers.OnlyPassing {
		t.Fatalf("defaults: %+v, %v; want off, stale reads, TTLs 0, warning instances answered", c, err)
	}
	if c, err := parse("--dns-listen-addr=127.0.0.1:8600", "--dns-only-passing", "--dns-service-ttl=10s"); err != nil || !c.Answers.OnlyPassing || c.Answers.ServiceTTL.Seconds() != 10 {
		t.Fatalf("set: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--dns-listen-addr=8600"}, {"--dns-udp-answer-limit=9"}, {"--dns-udp-answer-limit=0"}, {"--dns-node-ttl=-1s"}, {"--dns-domain="}} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v: accepted, want an error", bad)
		}
	}
}
