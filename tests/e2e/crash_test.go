package e2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// crashKinds are the kinds the crash tests run against: synod, plus real
// etcd with -crash-etcd (to validate the tests themselves).
func crashKinds() []string {
	if *crashEtcd {
		return []string{"etcd", "synod"}
	}
	return []string{"synod"}
}

// ackWriter does sequential Puts of unique keys through a client on all
// endpoints and records every acknowledged key.
type ackWriter struct {
	prefix string
	cli    *clientv3.Client

	mu     sync.Mutex
	acked  map[string]string
	n      atomic.Int64 // len(acked)
	failed atomic.Int64 // puts that returned an error (outcome unknown)
	lastEr atomic.Value // string
	stop   chan struct{}
	done   chan struct{}
}

func startWriter(t *testing.T, cl *Cluster, prefix string) *ackWriter {
	w := &ackWriter{
		prefix: prefix,
		cli:    newClient(t, cl.Endpoints()...),
		acked:  map[string]string{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go w.run()
	t.Cleanup(w.Stop)
	return w
}

func (w *ackWriter) run() {
	defer close(w.done)
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		key := fmt.Sprintf("%s%06d", w.prefix, i)
		val := fmt.Sprintf("value-%d-%s", i, strings.Repeat("v", i%50))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := w.cli.Put(ctx, key, val)
		cancel()
		if err != nil {
			w.failed.Add(1)
			w.lastEr.Store(err.Error())
			continue
		}
		w.mu.Lock()
		w.acked[key] = val
		w.mu.Unlock()
		w.n.Add(1)
	}
}

// Stop stops the writer and waits for its in-flight Put to finish.
func (w *ackWriter) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// waitMore waits until at least n more Puts than now have been acknowledged:
// the cluster is making progress.
func (w *ackWriter) waitMore(t *testing.T, n int64, what string) {
	t.Helper()
	target := w.n.Load() + n
	err := waitFor(60*time.Second, 20*time.Millisecond, func() (bool, error) {
		return w.n.Load() >= target, nil
	})
	if err != nil {
		last, _ := w.lastEr.Load().(string)
		t.Fatalf("%s: the writer did not get %d more puts acknowledged (acked %d, want %d, failed %d, last error %q): %v",
			what, n, w.n.Load(), target, w.failed.Load(), last, err)
	}
	t.Logf("%s: %d puts acknowledged, %d failed", what, w.n.Load(), w.failed.Load())
}

func (w *ackWriter) snapshot() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]string, len(w.acked))
	for k, v := range w.acked {
		m[k] = v
	}
	return m
}

// memberKVs reads every key under prefix from member i alone with a
// serializable Get (what the member itself has applied).
func memberKVs(t *testing.T, cl *Cluster, i int, prefix string) (map[string]string, []string, int64) {
	t.Helper()
	m := cl.Members[i]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := m.client(t).Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil {
		t.Fatalf("serializable get %q on %s: %v", prefix, m.Name, err)
	}
	kvs := make(map[string]string, len(resp.Kvs))
	var fingerprint []string
	for _, kv := range resp.Kvs {
		kvs[string(kv.Key)] = string(kv.Value)
		fingerprint = append(fingerprint, fmt.Sprintf("%s=%s@%d/%d/%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version))
	}
	return kvs, fingerprint, resp.Header.Revision
}

// checkAllMembersHave waits for convergence, then checks with a serializable
// read on EVERY member that each acknowledged key is present with its value,
// and that all members hold the identical keyspace under prefix. (A put that
// timed out client-side may still commit late, so the identity check
// re-converges and retries before it fails.)
func checkAllMembersHave(t *testing.T, cl *Cluster, prefix string, acked map[string]string) {
	t.Helper()
	var diff string
	for attempt := 1; attempt <= 5; attempt++ {
		cl.WaitConverged(60 * time.Second)
		diff = ""
		var first []string
		for i, m := range cl.Members {
			_, fp, _ := memberKVs(t, cl, i, prefix)
			if i == 0 {
				first = fp
			} else if !slices.Equal(fp, first) && diff == "" {
				diff = fmt.Sprintf("%s and %s hold different keyspaces under %q (%d vs %d keys)", cl.Members[0].Name, m.Name, prefix, len(first), len(fp))
			}
		}
		if diff == "" {
			break
		}
		t.Logf("attempt %d: %s; re-converging", attempt, diff)
	}
	if diff != "" {
		t.Errorf("%s: %s", cl.Kind, diff)
	}
	for i, m := range cl.Members {
		kvs, _, rev := memberKVs(t, cl, i, prefix)
		missing, wrong := 0, 0
		var examples []string
		for k, v := range acked {
			got, ok := kvs[k]
			switch {
			case !ok:
				missing++
			case got != v:
				wrong++
			default:
				continue
			}
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("%s: want %q, got %q (present=%v)", k, v, got, ok))
			}
		}
		if missing+wrong > 0 {
			slices.Sort(examples)
			t.Errorf("%s %s (revision %d): %d of %d acknowledged keys missing, %d with a wrong value; e.g.\n  %s",
				cl.Kind, m.Name, rev, missing, len(acked), wrong, strings.Join(examples, "\n  "))
		}
		t.Logf("%s %s: %d keys under %q at revision %d", cl.Kind, m.Name, len(kvs), prefix, rev)
	}
}

// TestCrashSafety kills -9 the leader and then a follower under a steady
// write load and checks that no acknowledged write is lost on any member.
func TestCrashSafety(t *testing.T) {
	for _, kind := range crashKinds() {
		t.Run(kind, func(t *testing.T) {
			cl := startCluster(t, kind, 3, "--snapshot-count=100")
			const prefix = "crash/"
			w := startWriter(t, cl, prefix)
			w.waitMore(t, 150, "all members up") // past --snapshot-count: snapshots have happened

			leader := cl.WaitLeader(30 * time.Second)
			cl.Kill9(leader)
			newLeader := cl.WaitLeader(30 * time.Second)
			t.Logf("leader %s killed; new leader %s", cl.Members[leader].Name, cl.Members[newLeader].Name)
			w.waitMore(t, 100, "old leader down")
			cl.Restart(leader)
			w.waitMore(t, 100, "old leader restarted")

			// A follower, preferably one not killed yet.
			cur := cl.WaitLeader(30 * time.Second)
			follower := -1
			for i := range cl.Members {
				if i != cur && (follower < 0 || i != leader) {
					follower = i
				}
			}
			cl.Kill9(follower)
			w.waitMore(t, 100, "follower down")
			cl.Restart(follower)
			w.waitMore(t, 100, "follower restarted")

			w.Stop()
			acked := w.snapshot()
			t.Logf("writer stopped: %d acknowledged, %d failed puts", len(acked), w.failed.Load())
			checkAllMembersHave(t, cl, prefix, acked)
		})
	}
}

// TestSnapshotCatchUp stops a follower, writes enough that the leader's log is
// truncated past it, restarts it and checks that it catches up — via a
// snapshot streamed from the leader.
func TestSnapshotCatchUp(t *testing.T) {
	for _, kind := range crashKinds() {
		t.Run(kind, func(t *testing.T) {
			flags := []string{"--snapshot-count=100"}
			installed := "installed snapshot" // synod's follower log line (raftnode/snapshot.go)
			if kind == "etcd" {
				// etcd keeps 5000 entries behind a snapshot by default; synod keeps min(5000, snapshot-count).
				flags = append(flags, "--snapshot-catchup-entries=100")
				installed = "applied snapshot"
			}
			cl := startCluster(t, kind, 3, flags...)
			leader := cl.WaitLeader(30 * time.Second)
			lag := (leader + 1) % len(cl.Members)
			cl.StopMember(lag)

			const prefix, n = "catchup/", 1200
			cli := newClient(t, cl.RunningEndpoints()...)
			want := map[string]string{}
			for i := 0; i < n; i++ {
				want[fmt.Sprintf("%s%05d", prefix, i)] = fmt.Sprintf("v%d", i)
			}
			putAll(t, cli, want)
			last := fmt.Sprintf("%s%05d", prefix, n-1)
			t.Logf("%d keys written with %s stopped", n, cl.Members[lag].Name)

			cl.Restart(lag)
			m := cl.Members[lag]
			if err := waitVisible(t, m, last); err != nil {
				t.Fatalf("%s %s did not catch up: %v", kind, m.Name, err)
			}
			kvs, _, rev := memberKVs(t, cl, lag, prefix)
			bad := 0
			for k, v := range want {
				if kvs[k] != v {
					if bad < 5 {
						t.Errorf("%s %s after catch-up: %s = %q, want %q", kind, m.Name, k, kvs[k], v)
					}
					bad++
				}
			}
			if bad > 0 || len(kvs) != n {
				t.Errorf("%s %s after catch-up (revision %d): %d keys, %d wrong or missing of %d", kind, m.Name, rev, len(kvs), bad, n)
			}
			var seen []string
			for _, l := range m.logLinesSinceStart() {
				if strings.Contains(l, installed) {
					seen = append(seen, l)
				}
			}
			if len(seen) == 0 {
				t.Errorf("%s %s caught up, but its log since restart has no %q line: it did not receive a snapshot, "+
					"so the leader's log was not truncated past it and the chunked snapshot path was not exercised", kind, m.Name, installed)
			} else {
				t.Logf("%s %s: %s", kind, m.Name, seen[0])
			}
			if kind == "synod" {
				noReceivedSnapshotLeft(t, m.DataDir)
			}
			checkAllMembersHave(t, cl, prefix, want)
		})
	}
}

// waitVisible waits up to a minute until key is visible on m (a
// serializable read: what m itself has applied).
func waitVisible(t *testing.T, m *Member, key string) error {
	t.Helper()
	mc := m.client(t)
	return waitFor(60*time.Second, 50*time.Millisecond, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, err := mc.Get(ctx, key, clientv3.WithSerializable())
		if err != nil {
			return false, err
		}
		return len(r.Kvs) == 1, fmt.Errorf("%s not visible yet at revision %d", key, r.Header.Revision)
	})
}

// noReceivedSnapshotLeft checks that a synod member that installed a
// snapshot kept nothing of it: the stream was never written to a file
// (<data-dir>/snap), and its tables were ingested and their directory
// removed (<data-dir>/db.ingest; mvcc/doc.go, "Restore").
func noReceivedSnapshotLeft(t *testing.T, dataDir string) {
	t.Helper()
	for _, d := range []string{"snap", "db.ingest"} {
		left, err := os.ReadDir(filepath.Join(dataDir, d))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range left {
			t.Errorf("%s left in %s after the snapshot was installed", e.Name(), d)
		}
	}
}

// putAll writes every key with 8 concurrent writers, retrying failures (a
// retried put writes the same value, so it is idempotent for the check).
func putAll(t *testing.T, cli *clientv3.Client, kvs map[string]string) {
	t.Helper()
	keys := make(chan string, len(kvs))
	for k := range kvs {
		keys <- k
	}
	close(keys)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err = cli.Put(ctx, k, kvs[k])
					cancel()
					if err == nil {
						break
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("%s: %v", k, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d puts failed, e.g. %s", len(errs), errs[0])
	}
}

const restartGoldenHeader = "# TestWholeClusterRestart transcript from a 3-member etcd v3.7.3 cluster (--snapshot-count=100):\n" +
	"# 250 sequential puts from revision 1, a prefix delete, a compaction, one more put. Regenerate with\n" +
	"# go test ./tests/e2e/ -run TestWholeClusterRestart/etcd -update. Member endpoints are shown as <mN>.\n"

// TestWholeClusterRestart writes, deletes and compacts, then kills -9 every
// member at once (a power loss), restarts them all and checks that etcdctl
// shows exactly the same data, history, compaction state and KV hash as
// before. It runs against etcd too (cheap), which validates the test.
func TestWholeClusterRestart(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			cl := startCluster(t, kind, 3, "--snapshot-count=100")
			cli := newClient(t, cl.Endpoints()...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const prefix = "wr/"
			var revs []int64
			for i := 0; i < 250; i++ {
				r, err := cli.Put(ctx, fmt.Sprintf("%s%04d", prefix, i%100), fmt.Sprintf("v%d", i))
				if err != nil {
					t.Fatalf("put: %v", err)
				}
				revs = append(revs, r.Header.Revision)
			}
			if _, err := cli.Delete(ctx, prefix+"005", clientv3.WithPrefix()); err != nil {
				t.Fatalf("delete: %v", err)
			}
			compactAt := revs[150]
			if _, err := cli.Compact(ctx, compactAt); err != nil {
				t.Fatalf("compact: %v", err)
			}
			last, err := cli.Put(ctx, prefix+"last", "x")
			if err != nil {
				t.Fatalf("put: %v", err)
			}

			probes := [][]string{
				{"get", prefix, "--prefix", "-w", "json"},
				{"get", prefix, "--prefix", "--rev", strconv.FormatInt(compactAt, 10), "-w", "json"},
				{"get", prefix, "--prefix", "--rev", strconv.FormatInt(compactAt-1, 10)},
				{"get", prefix, "--prefix", "--rev", strconv.FormatInt(revs[200], 10), "--keys-only", "--limit", "7"},
				{"get", prefix + "0042", "-w", "fields"},
				{"get", prefix, "--prefix", "--count-only", "-w", "fields"},
				{"compaction", strconv.FormatInt(compactAt, 10)},
				{"get", prefix, "--prefix", "--rev", strconv.FormatInt(last.Header.Revision+1, 10)},
			}
			probes = append(probes,
				[]string{"endpoint", "hashkv", "--rev", strconv.FormatInt(last.Header.Revision, 10)},
				[]string{"endpoint", "hashkv", "--rev", strconv.FormatInt(revs[200], 10), "-w", "json"})
			transcript := func() string {
				cl.WaitConverged(30 * time.Second)
				var b strings.Builder
				b.WriteString(restartGoldenHeader)
				for _, args := range probes {
					stdout, stderr, code := etcdctl(t, cl.Endpoints(), args...)
					fmt.Fprintf(&b, "=== %s\n%s%sexit %d\n", strings.Join(args, " "),
						cl.normalizeEndpoints(normalizeStdout(args, stdout)), normalizeStderr(stderr), code)
				}
				// per member: serializable read and KV hash at the same revision
				for i, m := range cl.Members {
					_, fp, rev := memberKVs(t, cl, i, prefix)
					hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
					h, err := m.client(t).HashKV(hctx, m.Endpoint, last.Header.Revision)
					hcancel()
					if err != nil {
						t.Fatalf("hashkv on %s: %v", m.Name, err)
					}
					fmt.Fprintf(&b, "=== %s: revision %d, %d keys, sha %x, hashkv %d compact %d\n", m.Name, rev, len(fp),
						sha256.Sum256([]byte(strings.Join(fp, "\n"))), h.Hash, h.CompactRevision)
				}
				return b.String()
			}
			before := transcript()
			cl.Kill9All()
			cl.RestartAll()
			after := transcript()
			if before != after {
				t.Errorf("%s: etcdctl sees different data after a whole-cluster kill -9 and restart\n--- before:\n%s--- after:\n%s", kind, before, after)
			}
			if strings.Count(before, ", hashkv ") != 3 {
				t.Errorf("transcript lacks per-member lines:\n%s", before)
			}
			// The history is deterministic (one sequential writer from revision 1),
			// so the transcript is also compared with etcd's.
			const golden = "testdata/restart.golden"
			if *update && kind == "etcd" {
				if err := os.WriteFile(golden, []byte(before), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s", golden)
				return
			}
			compareGolden(t, kind, "restart", before)
		})
	}
}
