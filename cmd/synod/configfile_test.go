package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synod-db/synod/tlsconfig"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "etcd.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const sampleConfig = `
name: from-file
data-dir: /data/from-file
wal-dir: /wal/from-file
max-txn-ops: 3
heartbeat-interval: 50
election-timeout: 500
watch-progress-notify-interval: 2000000000
grpc-keepalive-min-time: 1000000000
unsafe-no-fsync: true
client-transport-security:
  cert-file: /c.crt
  key-file: /c.key
  client-cert-file: /cc.crt
  client-key-file: /cc.key
  client-cert-auth: true
  trusted-ca-file: /ca.crt
peer-transport-security:
  cert-file: /p.crt
  key-file: /p.key
  allowed-cn: [peer]
`

// As etcd: with a configuration file, the other flags and the ETCD_*
// variables are ignored; the file's values land where the flags' would.
func TestConfigFileReplacesFlagsAndEnvironment(t *testing.T) {
	path := writeConfig(t, sampleConfig)
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"flag":     {args: []string{"--config-file=" + path, "--name=from-flag", "--max-txn-ops=100"}, env: map[string]string{"ETCD_MAX_TXN_OPS": "50", "ETCD_WAL_DIR": "/wal/env"}},
		"variable": {env: map[string]string{"ETCD_CONFIG_FILE": path, "ETCD_NAME": "from-env"}},
		"synod":    {env: map[string]string{"SYNOD_CONFIG_FILE": path, "ETCD_CONFIG_FILE": "/nonexistent"}},
	} {
		c, err := parseServe(t, tc.args, tc.env)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Name != "from-file" || c.DataDir != "/data/from-file" || c.WALDir != "/wal/from-file" || c.MaxTxnOps != 3 ||
			c.HeartbeatInterval != 50*time.Millisecond || c.ElectionTimeout != 500*time.Millisecond ||
			c.WatchProgressNotifyInterval != 2*time.Second || c.GRPCKeepAliveMinTime != time.Second || !c.UnsafeNoFsync {
			t.Errorf("%s: %+v", name, c)
		}
		wantClient := tlsconfig.Info{CertFile: "/c.crt", KeyFile: "/c.key", ClientCertFile: "/cc.crt", ClientKeyFile: "/cc.key", ClientCertAuth: true, TrustedCAFile: "/ca.crt"}
		wantPeer := tlsconfig.Info{CertFile: "/p.crt", KeyFile: "/p.key", AllowedCN: "peer", VerifyClientSAN: true}
		if c.ClientTLS != wantClient || c.PeerTLS != wantPeer {
			t.Errorf("%s: client TLS %+v, peer TLS %+v", name, c.ClientTLS, c.PeerTLS)
		}
		// The rest keeps etcd's defaults (not the ignored flags').
		if c.MaxRequestBytes != 1536*1024 || len(c.ListenClientURLs) != 1 || c.ListenClientURLs[0] != "http://127.0.0.1:2379" {
			t.Errorf("%s: defaults: %+v", name, c)
		}
	}
}

func TestConfigFileBadValues(t *testing.T) {
	for body, want := range map[string]string{
		"listen-client-urls: localhost\n":     "URL scheme must be http, https, unix, or unixs: localhost",
		"initial-cluster-state: maybe\n":      `invalid value "maybe"`,
		"feature-gates: Bogus=true\n":         "unrecognized feature gate: Bogus",
		"election-timeout: 300\n":             "--election-timeout[300ms] should be at least as 5 times as --heartbeat-interval[100ms]",
		"log-format: xml\nlogger: capnslog\n": "--logger=capnslog is removed in v3.5",
		"enable-log-rotation: true\n":         "--log-outputs requires a single file path when --log-rotate-config-json is defined",
		"enable-log-rotation: true\nlog-outputs: [/a.log]\nlog-rotation-config-json: '{\"maxsize\": \"big\"}'\n": "invalid log rotation config: json: cannot unmarshal string",
		"initial-cluster: a=http://localhost:2380\ndiscovery-srv: example.com\n":                                 "multiple discovery or bootstrap flags are set",
		"heartbeat-interval: \"100ms\"\n":     "of type uint",
		"client-transport-security: [a, b]\n": "client-transport-security",
	} {
		_, err := parseServe(t, []string{"--config-file=" + writeConfig(t, body)}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
}

// Flags with no meaning for synod are accepted and each set one is noted
// once; a variable naming no flag is noted as etcd warns about it.
func TestInertFlagsAreNoted(t *testing.T) {
	var stderr strings.Builder
	fs, f := newServeFlagSet(&stderr)
	t.Setenv("ETCD_NO_SUCH_FLAG", "1")
	t.Setenv("ETCD_BACKEND_BATCH_LIMIT", "10")
	t.Setenv(timerSlackApplied, "1000000") // set by synod's own re-exec: not the operator's
	if err := f.parse(fs, []string{"--max-wals=10", "--v", "--raft-read-timeout=1s", "--metrics=extensive", "--v2-deprecation=gone"}); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, l := range f.lines {
		all = append(all, fmt.Sprintf("%v %s %v", l.level, l.msg, l.args))
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{
		"flag --max-wals=10 has no effect in synod", "flag --backend-batch-limit=10 has no effect in synod",
		"flag --metrics=extensive has no effect", "--v2-deprecation is deprecated", "flag is no longer supported - ignoring: --v",
		"--raft-read-timeout and --raft-write-timeout have no effect", "WARN unrecognized environment variable [environment-variable ETCD_NO_SUCH_FLAG=1]",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, timerSlackApplied) {
		t.Errorf("synod's own re-exec marker is warned about: %s", joined)
	}
	if !strings.Contains(joined, "INFO recognized and used environment variable [variable-name ETCD_BACKEND_BATCH_LIMIT variable-value 10]") {
		t.Errorf("the variable used is not logged: %s", joined)
	}
	if _, err := parseServe(t, []string{"--metrics=full"}, nil); err == nil {
		t.Error("--metrics=full accepted; etcd refuses it")
	}
}

func TestSnapshotCatchUpEntriesFlag(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil || c.SnapshotCatchUpEntries != 5000 {
		t.Fatalf("etcd's default: %d %v", c.SnapshotCatchUpEntries, err)
	}
	c, err = parseServe(t, []string{"--config-file=" + writeConfig(t, "snapshot-catchup-entries: 100\ncompaction-batch-limit: 7\n")}, nil)
	if err != nil || c.SnapshotCatchUpEntries != 100 || c.CompactionBatchLimit != 7 {
		t.Fatalf("from the file: %d %d %v", c.SnapshotCatchUpEntries, c.CompactionBatchLimit, err)
	}
}

func TestSocketOptionFlags(t *testing.T) {
	c, err := parseServe(t, []string{"--socket-reuse-port"}, map[string]string{"ETCD_SOCKET_REUSE_ADDRESS": "true"})
	if err != nil || !c.SocketReusePort || !c.SocketReuseAddress {
		t.Fatalf("%v %v %v", c.SocketReusePort, c.SocketReuseAddress, err)
	}
	c, err = parseServe(t, []string{"--config-file=" + writeConfig(t, "socket-options:\n  reuse-port: true\n")}, nil)
	if err != nil || !c.SocketReusePort || c.SocketReuseAddress {
		t.Fatalf("from the file: %v %v %v", c.SocketReusePort, c.SocketReuseAddress, err)
	}
}
