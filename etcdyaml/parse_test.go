package etcdyaml_test

import (
	"strings"
	"testing"

	"github.com/synod-db/synod/etcdyaml"
)

func settings(t *testing.T, yaml string) map[string]string {
	t.Helper()
	ss, err := etcdyaml.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, s := range ss {
		if i > 0 && ss[i-1].Flag >= s.Flag {
			t.Errorf("settings not sorted by flag: %v", ss)
		}
		out[s.Flag] = s.Value
	}
	return out
}

func TestParseMapsEtcdKeysToFlags(t *testing.T) {
	got := settings(t, `
name: infra1
data-dir: /var/lib/etcd
heartbeat-interval: 200
election-timeout: 2000
listen-client-urls: https://10.0.0.1:2379,https://127.0.0.1:2379
watch-progress-notify-interval: 5000000000
grpc-keepalive-min-time: 0
strict-reconfig-check: false
max-concurrent-streams: 100
cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
log-outputs: [stderr, /var/log/etcd.log]
feature-gates: InitialCorruptCheck=true
initial-cluster-state: ""
self-signed-cert-validity: 0
some-future-key: 1
socket-options:
  reuse-port: true
discovery-config:
  client:
    endpoints: [http://d1:2379]
    request-timeout: 3000000000
    keepalive-time: 1000000000
    secure:
      cacert: /d-ca.crt
      insecure-transport: false
    auth:
      username: u
  token: tok
client-transport-security:
  cert-file: /c.crt
  key-file: /c.key
  client-cert-auth: true
  trusted-ca-file: /ca.crt
  allowed-hostname: [a.example, b.example]
peer-transport-security:
  cert-file: /p.crt
  client-cert-file: /pc.crt
  auto-tls: true
  allowed-cn: [etcd-peer]
  skip-client-san-verification: true
`)
	want := map[string]string{
		"name": "infra1", "data-dir": "/var/lib/etcd", "heartbeat-interval": "200", "election-timeout": "2000",
		"listen-client-urls":             "https://10.0.0.1:2379,https://127.0.0.1:2379",
		"watch-progress-notify-interval": "5s", "grpc-keepalive-min-time": "0s", "strict-reconfig-check": "false",
		"max-concurrent-streams": "100",
		"cipher-suites":          "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"log-outputs":            "stderr,/var/log/etcd.log", "feature-gates": "InitialCorruptCheck=true",
		"socket-reuse-port":   "true",
		"discovery-endpoints": "http://d1:2379", "discovery-token": "tok",
		"discovery-request-timeout": "3s", "discovery-keepalive-time": "1s", "discovery-cacert": "/d-ca.crt",
		"discovery-insecure-transport": "false", "discovery-user": "u",
		"cert-file": "/c.crt", "key-file": "/c.key", "client-cert-auth": "true", "trusted-ca-file": "/ca.crt",
		"client-cert-allowed-hostname": "a.example,b.example",
		"peer-cert-file":               "/p.crt", "peer-client-cert-file": "/pc.crt", "peer-auto-tls": "true",
		"peer-cert-allowed-cn": "etcd-peer", "peer-skip-client-san-verification": "true",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("--%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected setting --%s=%q (unknown keys and zero values etcd replaces must be left out)", k, got[k])
		}
	}
}

// The refusals are etcd's, word for word (tests/e2e/testdata/flag-errors.golden
// has them as recorded from etcd 3.7.3).
func TestParseRefusesAsEtcd(t *testing.T) {
	for yaml, want := range map[string]string{
		"name: [1\n":                            "error converting YAML to JSON: yaml: line 1: did not find expected ',' or ']'",
		"heartbeat-interval: \"10s\"\n":         "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.Config.heartbeat-interval of type uint",
		"watch-progress-notify-interval: 10m\n": "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.Config.watch-progress-notify-interval of type time.Duration",
		"client-transport-security: yes\n":      "configYAML.configJSON.client-transport-security",
	} {
		_, err := etcdyaml.Parse([]byte(yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", yaml, err, want)
		}
	}
}

// An empty section is read as etcd reads it: nothing set.
func TestParseEmptySection(t *testing.T) {
	if got := settings(t, "client-transport-security:\npeer-transport-security: null\nname: m1\n"); len(got) != 1 || got["name"] != "m1" {
		t.Fatalf("got %v", got)
	}
}
