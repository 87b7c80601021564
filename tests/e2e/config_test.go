package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/net/http2"
)

// A kubeadm control plane starts etcd as a static pod with this command
// line (kubeadm's etcd manifest; the harness adds --name, --data-dir, the
// URLs and --initial-cluster): synod must start from it, serve etcdctl over
// mutual TLS, answer /health on the plain-HTTP metrics URL and send watch
// progress notifications at the given interval.
func TestKubeadmStaticPodCommandLine(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			requireKind(t, kind)
			p := newPKI(t)
			ports, err := freePorts(1)
			if err != nil {
				t.Fatal(err)
			}
			metrics := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
			c := startClusterWith(t, kind, 1, clusterOptions{
				ClientScheme: "https", PeerScheme: "https",
				ClientTLS: clientTLS(t, []*x509.Certificate{p.ca.Cert}, p.clientCert, p.clientKey),
				Flags: []string{
					"--cert-file=" + p.serverCert, "--client-cert-auth=true", "--key-file=" + p.serverKey,
					"--feature-gates=InitialCorruptCheck=true", "--listen-metrics-urls=" + metrics,
					"--peer-cert-file=" + p.serverCert, "--peer-client-cert-auth=true", "--peer-key-file=" + p.serverKey,
					"--peer-trusted-ca-file=" + p.caFile, "--snapshot-count=10000", "--trusted-ca-file=" + p.caFile,
					"--watch-progress-notify-interval=5s",
				},
			})
			tlsArgs := []string{"--cacert=" + p.caFile, "--cert=" + p.clientCert, "--key=" + p.clientKey}
			if out, errOut, code := etcdctl(t, c.Endpoints(), append(tlsArgs, "put", "kubeadm", "v")...); code != 0 || out != "OK\n" {
				t.Fatalf("etcdctl put over mTLS: exit %d, %q %q", code, out, errOut)
			}
			if out, errOut, code := etcdctl(t, c.Endpoints(), append(tlsArgs, "get", "kubeadm")...); code != 0 || out != "kubeadm\nv\n" {
				t.Fatalf("etcdctl get over mTLS: exit %d, %q %q", code, out, errOut)
			}
			if _, _, code := etcdctl(t, c.Endpoints(), "--cacert="+p.caFile, "--dial-timeout=2s", "--command-timeout=3s", "get", "kubeadm"); code == 0 {
				t.Fatal("etcdctl without a client certificate was served: --client-cert-auth=true had no effect")
			}
			checkPlainHealth(t, metrics)
			waitProgressNotify(t, c.Members[0].client(t), 5*time.Second)
		})
	}
}

// checkPlainHealth GETs url/health over plain HTTP and wants etcd's healthy answer.
func checkPlainHealth(t *testing.T, url string) {
	t.Helper()
	cli := &http.Client{Timeout: 5 * time.Second}
	resp, err := cli.Get(url + "/health")
	if err != nil {
		t.Fatalf("/health on the metrics URL: %v", err)
	}
	defer resp.Body.Close()
	var body struct{ Health string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Health != "true" {
		t.Fatalf("/health on the metrics URL: %s, %+v, %v", resp.Status, body, err)
	}
}

// waitProgressNotify opens an idle watch with progress notifications and
// checks the first one arrives after about one interval: not before half
// of it (the interval is honoured) and not after two of it plus slack.
func waitProgressNotify(t *testing.T, cli *clientv3.Client, interval time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*interval+3*time.Second)
	defer cancel()
	start := time.Now()
	wch := cli.Watch(clientv3.WithRequireLeader(ctx), "progress-idle-key", clientv3.WithProgressNotify())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			t.Fatalf("watch: %v", err)
		}
		if resp.IsProgressNotify() {
			took := time.Since(start)
			if took < interval/2 {
				t.Fatalf("progress notification after %v, before half of the %v interval", took, interval)
			}
			t.Logf("progress notification after %v (interval %v)", took, interval)
			return
		}
	}
	t.Fatalf("no progress notification within %v of a %v interval", time.Since(start), interval)
}

// An etcd YAML configuration file (etcd's key names, nested transport
// security sections, durations in nanoseconds) starts a member by itself:
// the flags and ETCD_* variables given with it are ignored, its settings
// take effect (mutual TLS, max-txn-ops, the progress interval, the WAL
// directory, the JSON log file), and the member recovers from its WAL
// directory after kill -9.
func TestServeFromEtcdConfigFile(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			requireKind(t, kind)
			t.Setenv("ETCD_MAX_TXN_OPS", "50")
			p := newPKI(t)
			dir := t.TempDir()
			ports, err := freePorts(2)
			if err != nil {
				t.Fatal(err)
			}
			client, peer := fmt.Sprintf("https://127.0.0.1:%d", ports[0]), fmt.Sprintf("https://127.0.0.1:%d", ports[1])
			walDir, logFile := filepath.Join(dir, "wal"), filepath.Join(dir, "member.log")
			yaml := fmt.Sprintf(`# etcd configuration file
name: cfg1
data-dir: %s
wal-dir: %s
listen-client-urls: %s
advertise-client-urls: %s
listen-peer-urls: %s
initial-advertise-peer-urls: %s
initial-cluster: cfg1=%s
initial-cluster-token: cfg-token
initial-cluster-state: new
max-txn-ops: 3
watch-progress-notify-interval: 1000000000
log-outputs: [stderr, %s]
client-transport-security:
  cert-file: %s
  key-file: %s
  client-cert-auth: true
  trusted-ca-file: %s
peer-transport-security:
  cert-file: %s
  key-file: %s
  client-cert-auth: true
  trusted-ca-file: %s
`, filepath.Join(dir, "data"), walDir, client, client, peer, peer, peer, logFile,
				p.serverCert, p.serverKey, p.caFile, p.serverCert, p.serverKey, p.caFile)
			path := filepath.Join(dir, "etcd.yaml")
			if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, m := startFromConfigFile(t, kind, path, ports[0], clientTLS(t, []*x509.Certificate{p.ca.Cert}, p.clientCert, p.clientKey))
			cli := m.client(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := cli.Put(ctx, "cfg-key", "cfg-value"); err != nil {
				t.Fatal(err)
			}
			ops := []clientv3.Op{clientv3.OpPut("a", "1"), clientv3.OpPut("b", "1"), clientv3.OpPut("c", "1"), clientv3.OpPut("d", "1")}
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err == nil || !strings.Contains(err.Error(), "too many operations in txn request") {
				t.Fatalf("a 4-operation txn with max-txn-ops: 3 in the file (and 100 on the command line, 50 in ETCD_MAX_TXN_OPS): %v", err)
			}
			waitProgressNotify(t, cli, time.Second)
			walFiles := map[string]string{"etcd": "*.wal", "synod": "*.log"}[kind]
			if got, _ := filepath.Glob(filepath.Join(walDir, walFiles)); len(got) == 0 {
				entries, _ := os.ReadDir(walDir)
				t.Fatalf("no %s files in wal-dir %s (it holds %v)", walFiles, walDir, entries)
			}
			checkJSONLog(t, logFile)
			c.Kill9(0)
			c.Restart(0)
			r, err := m.client(t).Get(ctx, "cfg-key")
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "cfg-value" {
				t.Fatalf("after kill -9 and restart from the WAL directory: %v %v", r, err)
			}
		})
	}
}

// startFromConfigFile starts one member with --config-file (and a flag the
// file overrides) and waits until it is ready.
func startFromConfigFile(t *testing.T, kind, path string, clientPort int, tc *tls.Config) (*Cluster, *Member) {
	t.Helper()
	dir := filepath.Dir(path)
	m := &Member{Name: "cfg1", DataDir: filepath.Join(dir, "data"), Endpoint: fmt.Sprintf("127.0.0.1:%d", clientPort),
		ClientURL: fmt.Sprintf("https://127.0.0.1:%d", clientPort), LogPath: filepath.Join(dir, "stderr.log"), TLS: tc}
	args := []string{"--config-file=" + path, "--max-txn-ops=100"}
	m.Bin, m.Args = etcdBin, args
	if kind == "synod" {
		m.Bin, m.Args = synodBin, append([]string{"serve"}, args...)
	}
	c := &Cluster{t: t, Kind: kind, Members: []*Member{m}}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		c.stopAll()
	})
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	if err := c.waitMemberReady(m, startTimeout); err != nil {
		t.Fatal(err)
	}
	return c, m
}

// checkJSONLog wants every line of path to be one of etcd's JSON log
// records, and the line saying the file replaced the flags.
func checkJSONLog(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("log-outputs file: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		for _, k := range []string{"level", "ts", "caller", "msg"} {
			if _, ok := rec[k].(string); !ok {
				t.Fatalf("log line without a %q string: %q", k, l)
			}
		}
	}
	if !strings.Contains(string(b), "loaded server configuration, other configuration command line flags and environment variables will be ignored if provided") {
		t.Fatalf("the log does not say the configuration file replaced the flags:\n%s", tail(string(b), 10))
	}
}

// --grpc-keepalive-interval and --grpc-keepalive-timeout: the server pings
// an idle client connection after the interval and closes it when the ping
// goes unanswered for the timeout. The client here speaks raw HTTP/2 and
// never answers.
func TestGRPCKeepaliveFlags(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			c := startCluster(t, kind, 1, "--grpc-keepalive-interval=1s", "--grpc-keepalive-timeout=1s")
			conn, err := net.DialTimeout("tcp", c.Members[0].Endpoint, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			_ = conn.SetDeadline(start.Add(8 * time.Second))
			if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
				t.Fatal(err)
			}
			fr := http2.NewFramer(conn, conn)
			if err := fr.WriteSettings(); err != nil {
				t.Fatal(err)
			}
			var pinged time.Duration
			for {
				f, err := fr.ReadFrame()
				if err != nil { // the server closed the connection (or the deadline passed)
					if pinged == 0 || time.Since(start) > 6*time.Second {
						t.Fatalf("after %v: %v (pinged at %v); want a ping after ~1s and the connection closed ~1s later", time.Since(start), err, pinged)
					}
					t.Logf("pinged after %v, closed after %v", pinged, time.Since(start))
					return
				}
				switch f := f.(type) {
				case *http2.SettingsFrame:
					if !f.IsAck() {
						_ = fr.WriteSettingsAck()
					}
				case *http2.PingFrame:
					if !f.IsAck() && pinged == 0 {
						pinged = time.Since(start)
					}
				case *http2.GoAwayFrame:
					t.Logf("GOAWAY %v after %v", f.ErrCode, time.Since(start))
				}
			}
		})
	}
}
