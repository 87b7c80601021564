package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// retryLog is clientv3's warning for a failed unary call, as normalizeStderr
// rewrites it.
func retryLog(method, code, msg string) string {
	return `[clientv3 log] level=warn msg="retrying of unary invoker failed" method=/etcdserverpb.` + method +
		` attempt=0 error="rpc error: code = ` + code + ` desc = etcdserver: ` + msg + `"` + "\n"
}

// leaseStep is one etcdctl command and what it must print: stdout matching
// the regular expression (anchored, after the lease ID is substituted for
// {id}), the exact stderr and the exit code.
type leaseStep struct {
	args   string
	stdout string
	stderr string
	code   int
}

// TestEtcdctlLease runs etcdctl's lease commands against a real cluster and
// checks their output has etcdctl's exact format (ctlv3/command/printer_simple.go
// and lease_command.go), against etcd too when its binary is available.
func TestEtcdctlLease(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			cl := startCluster(t, kind, 3)
			eps := cl.Endpoints()
			out, errOut, code := etcdctl(t, eps, "lease", "grant", "60")
			m := regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$`).FindStringSubmatch(out)
			if code != 0 || m == nil {
				t.Fatalf("lease grant: code %d\nstdout: %q\nstderr: %q", code, out, errOut)
			}
			id := m[1]
			n, err := strconv.ParseInt(id, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			dec := strconv.FormatInt(n, 10)
			steps := []leaseStep{
				{args: "put --lease={id} lk/b vb", stdout: `OK\n`},
				{args: "put --lease={id} lk/a va", stdout: `OK\n`},
				{args: "put lk/free vf", stdout: `OK\n`},
				{args: "lease timetolive {id}", stdout: `lease {id} granted with TTL\(60s\), remaining\((5[0-9]|60)s\)\n`},
				{args: "-w json lease timetolive --keys {id}",
					stdout: `\{"cluster_id":\d+,"member_id":\d+,"revision":4,"raft_term":\d+,"id":{dec},"ttl":(5[0-9]|60),"granted-ttl":60,"keys":\[("bGsvYQ==","bGsvYg=="|"bGsvYg==","bGsvYQ==")\]\}\n`},
				{args: "-w json lease keep-alive --once {id}",
					stdout: `\{"cluster_id":\d+,"member_id":\d+,"revision":4,"raft_term":\d+,"ID":{dec},"TTL":60\}\n`},
				{args: "-w json lease list",
					stdout: `\{"cluster_id":\d+,"member_id":\d+,"revision":4,"raft_term":\d+,"leases":\[\{"id":{dec}\}\]\}\n`},
				{args: "lease timetolive --keys {id}",
					stdout: `lease {id} granted with TTL\(60s\), remaining\((5[0-9]|60)s\), attached keys\(\[(lk/a lk/b|lk/b lk/a)\]\)\n`}, // etcd: map order
				{args: "lease keep-alive --once {id}", stdout: `lease {id} keepalived with TTL\(60\)\n`},
				{args: "lease list", stdout: `found 1 leases\n{id}\n`},
				{args: "-w json lease revoke {id}", stdout: `\{"header":\{"cluster_id":\d+,"member_id":\d+,"revision":5,"raft_term":\d+\}\}\n`},
				{args: "get --prefix lk/ --keys-only", stdout: `lk/free\n\n`},
				{args: "lease timetolive {id}", stdout: `lease {id} already expired\n`},
				{args: "lease list", stdout: `found 0 leases\n`},
				{args: "lease revoke {id}", stderr: retryLog("Lease/LeaseRevoke", "NotFound", "requested lease not found") +
					"Error: failed to revoke lease (etcdserver: requested lease not found)\n", code: 1},
				{args: "lease keep-alive --once {id}", stderr: "Error: etcdserver: requested lease not found\n", code: 2},
				{args: "put --lease={id} lk/c vc", stderr: retryLog("KV/Put", "NotFound", "requested lease not found") +
					"Error: etcdserver: requested lease not found\n", code: 1},
				{args: "-w json lease grant 30",
					stdout: `\{"cluster_id":\d+,"member_id":\d+,"revision":5,"raft_term":\d+,"ID":\d+,"TTL":30,"Error":""\}\n`},
				{args: "lease grant 9000000001", stderr: retryLog("Lease/LeaseGrant", "OutOfRange", "too large lease TTL") +
					"Error: failed to grant lease (etcdserver: too large lease TTL)\n", code: 1},
			}
			for _, s := range steps {
				args := strings.Fields(strings.ReplaceAll(s.args, "{id}", id))
				s.stdout = strings.ReplaceAll(s.stdout, "{dec}", dec)
				out, errOut, code := etcdctl(t, eps, args...)
				errOut = normalizeStderr(errOut)
				re := regexp.MustCompile("^" + strings.ReplaceAll(s.stdout, "{id}", id) + "$")
				if code != s.code || !re.MatchString(out) || errOut != s.stderr {
					t.Fatalf("etcdctl %s: code %d (want %d)\nstdout: %q (want %q)\nstderr: %q (want %q)",
						strings.Join(args, " "), code, s.code, out, re, errOut, s.stderr)
				}
			}
		})
	}
}

// TestEtcdctlLeaseExpiry: a lease granted with etcdctl and not kept alive
// expires, and its key with it; the minimum TTL is etcd's (2 s with the
// default 100 ms heartbeat and 1 s election timeout).
func TestEtcdctlLeaseExpiry(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			cl := startCluster(t, kind, 3)
			eps := cl.Endpoints()
			out, _, code := etcdctl(t, eps, "lease", "grant", "1")
			m := regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(2s\)\n$`).FindStringSubmatch(out)
			if code != 0 || m == nil {
				t.Fatalf("lease grant 1: code %d, stdout %q", code, out)
			}
			if out, errOut, code := etcdctl(t, eps, "put", "--lease="+m[1], "short", "v"); code != 0 {
				t.Fatalf("put: %q %q", out, errOut)
			}
			err := waitFor(15*time.Second, 100*time.Millisecond, func() (bool, error) {
				out, _, code := etcdctl(t, eps, "get", "short", "--print-value-only")
				return code == 0 && out == "", nil
			})
			if err != nil {
				t.Fatalf("key of an expired lease still there: %v", err)
			}
			if out, _, _ := etcdctl(t, eps, "lease", "timetolive", m[1]); out != "lease "+m[1]+" already expired\n" {
				t.Fatalf("timetolive after expiry: %q", out)
			}
		})
	}
}

// TestLeaseSurvivesKill9: a lease, its attached keys and a keep-alive's
// renewal survive SIGKILL of one member and then of the whole cluster (a
// power loss); afterwards revoking it still deletes its keys, on every member.
func TestLeaseSurvivesKill9(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			cl := startCluster(t, kind, 3)
			eps := cl.Endpoints()
			out, _, code := etcdctl(t, eps, "lease", "grant", "600")
			m := regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(600s\)\n$`).FindStringSubmatch(out)
			if code != 0 || m == nil {
				t.Fatalf("lease grant: code %d, stdout %q", code, out)
			}
			id := m[1]
			for _, k := range []string{"kl/a", "kl/b"} {
				if out, errOut, code := etcdctl(t, eps, "put", "--lease="+id, k, "v"); code != 0 {
					t.Fatalf("put %s: %q %q", k, out, errOut)
				}
			}
			if out, _, code := etcdctl(t, eps, "lease", "keep-alive", "--once", id); code != 0 {
				t.Fatalf("keep-alive: %q", out)
			}
			attached := regexp.MustCompile(`^lease ` + id + ` granted with TTL\(600s\), remaining\(\d+s\), attached keys\(\[(kl/a kl/b|kl/b kl/a)\]\)\n$`)
			cl.Kill9(2)
			cl.Restart(2)
			cl.WaitConverged(startTimeout)
			if out, _, _ := etcdctl(t, []string{cl.Members[2].Endpoint}, "lease", "timetolive", "--keys", id); !attached.MatchString(out) {
				t.Fatalf("after kill -9 of one member: %q", out)
			}
			cl.Kill9All()
			cl.RestartAll()
			cl.WaitLeader(startTimeout)
			for _, mem := range cl.Members {
				if out, _, _ := etcdctl(t, []string{mem.Endpoint}, "lease", "timetolive", "--keys", id); !attached.MatchString(out) {
					t.Fatalf("%s after kill -9 of every member: %q", mem.Name, out)
				}
			}
			if out, errOut, code := etcdctl(t, eps, "lease", "revoke", id); code != 0 {
				t.Fatalf("revoke: %q %q", out, errOut)
			}
			cl.WaitConverged(startTimeout)
			for _, mem := range cl.Members {
				out, _, code := etcdctl(t, []string{mem.Endpoint}, "get", "--prefix", "kl/", "--consistency=s", "--count-only", "-w", "fields")
				if code != 0 || !strings.Contains(out, `"Count" : 0`) {
					t.Fatalf("%s still has the revoked lease's keys: %q", mem.Name, out)
				}
			}
		})
	}
}
