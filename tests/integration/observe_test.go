package integration

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// httpGet fetches path from member i's client port (HTTP/1 shares the port
// with gRPC, as in etcd).
func (c *cluster) httpGet(i int, path string) (int, string, error) {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + c.endpoint(i) + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// metricValue returns the value of the first sample of the exposition line
// matching name and labels (a regexp fragment, may be empty).
func metricValue(t *testing.T, body, name, labels string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*` + labels + `[^}]*\})? (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metric %s{%s} not found in:\n%s", name, labels, body)
	}
	v, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// /metrics on the client port carries etcd's metric names with values that
// follow what the cluster did.
func TestMetricsOnClientPort(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	cli := c.client(lead)
	const puts = 20
	for i := 0; i < puts; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("metrics/%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	const keepAlives = 3 // each a stream of its own
	lg, err := cli.Grant(ctx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < keepAlives; i++ {
		if _, err := cli.KeepAliveOnce(ctx(t), lg.ID); err != nil {
			t.Fatal(err)
		}
	}
	code, body, err := c.httpGet(lead, "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	checks := []struct {
		name, labels string
		min          float64
	}{
		{"etcd_server_has_leader", "", 1},
		{"etcd_server_is_leader", "", 1},
		{"etcd_server_proposals_committed_total", "", puts},
		{"etcd_server_proposals_applied_total", "", puts},
		{"etcd_disk_wal_fsync_duration_seconds_count", "", 1},
		{"etcd_disk_backend_commit_duration_seconds_count", "", puts},
		{"etcd_mvcc_db_total_size_in_bytes", "", 1},
		{"etcd_debugging_mvcc_current_revision", "", puts + 1},
		{"grpc_server_handled_total", `grpc_code="OK",grpc_method="Put"`, puts},
		{"grpc_server_started_total", `grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"`, keepAlives},
		{"synod_pebble_memtable_size_bytes", `db="state"`, 1},
		{"synod_pebble_memtable_size_bytes", `db="raftlog"`, 1},
		{"synod_pebble_block_cache_misses_total", `db="state"`, 0},
		{"synod_pebble_l0_files", `db="state"`, 0},
		{"synod_pebble_wal_bytes_written_total", `db="raftlog"`, puts * 20},
		{"synod_pebble_wal_bytes_written_total", `db="state"`, puts * 20},
		{"synod_pebble_level_tables", `db="state",level="6"`, 0},
		{"synod_pebble_write_stalls_total", `db="state"`, 0},
	}
	for _, ch := range checks {
		if v := metricValue(t, body, ch.name, ch.labels); v < ch.min {
			t.Errorf("%s{%s} = %v, want >= %v", ch.name, ch.labels, v, ch.min)
		}
	}
	follower := (lead + 1) % 3
	_, body, _ = c.httpGet(follower, "/metrics")
	if v := metricValue(t, body, "etcd_server_is_leader", ""); v != 0 {
		t.Errorf("follower etcd_server_is_leader = %v", v)
	}
}

// /health, /livez and /readyz with etcd's meanings: a member that lost its
// quorum is alive but neither healthy nor ready.
func TestHealthEndpoints(t *testing.T) {
	c := newCluster(t, 3, nil)
	for i := 0; i < 3; i++ {
		code, body, err := c.httpGet(i, "/health")
		if err != nil || code != 200 || body != `{"health":"true","reason":""}` {
			t.Fatalf("member %d /health = %d %q (%v)", i, code, body, err)
		}
		if code, body, _ := c.httpGet(i, "/readyz"); code != 200 || body != "ok\n" {
			t.Fatalf("member %d /readyz = %d %q", i, code, body)
		}
	}
	c.stop(1)
	c.stop(2)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body, _ := c.httpGet(0, "/health")
		if code == 503 && body == `{"health":"false","reason":"RAFT NO LEADER"}`+"\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health without quorum = %d %q, want 503 RAFT NO LEADER", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body, _ := c.httpGet(0, "/livez"); code != 200 || body != "ok\n" {
		t.Fatalf("/livez without quorum = %d %q, want alive", code, body)
	}
	if code, _, _ := c.httpGet(0, "/readyz"); code != 503 {
		t.Fatalf("/readyz without quorum = %d, want 503", code)
	}
	if code, _, _ := c.httpGet(0, "/health?serializable=true"); code != 200 {
		t.Fatalf("/health?serializable=true without quorum = %d, want 200", code)
	}
}
