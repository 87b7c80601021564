package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditLogEtcdctl drives `synod serve --audit-log FILE` with the real
// etcdctl (put, txn, get, a refused delete, compaction), stops it with
// SIGTERM, and checks the file holds exactly the writes, in order, with
// their keys, outcomes and revisions: the flag is wired and the log is
// flushed at a clean stop.
func TestAuditLogEtcdctl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	cl := startCluster(t, "synod", 1, "--audit-log="+path, "--max-txn-ops=2")
	eps := cl.Endpoints()
	run := func(stdin string, args ...string) (string, int) {
		t.Helper()
		out, errOut, code := etcdctlStdin(t, eps, stdin, args...)
		return out + errOut, code
	}
	for _, step := range []struct {
		stdin string
		args  []string
		fail  bool
	}{
		{"", []string{"put", "foo", "bar"}, false},
		{"value(\"foo\") = \"bar\"\n\nput k1 v1\ndel foo\n\nput k2 v2\n\n", []string{"txn"}, false},
		{"", []string{"get", "k1"}, false},
		{"\n\nput a 1\nput b 2\nput c 3\n\n\n", []string{"txn"}, true}, // too many ops
		{"", []string{"compaction", "2"}, false},
	} {
		if out, code := run(step.stdin, step.args...); (code != 0) != step.fail {
			t.Fatalf("etcdctl %s: exit %d\n%s", strings.Join(step.args, " "), code, out)
		}
	}
	cl.StopMember(0)

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type line struct {
		RPC, Key, Outcome, Message, Detail string
		Revision                           int64
		Ops                                []struct{ Type, Key string }
	}
	var got []line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		got = append(got, l)
	}
	want := []string{
		"/etcdserverpb.KV/Put foo OK 2",
		"/etcdserverpb.KV/Txn  OK 3 put:k1 delete_range:foo",
		"/etcdserverpb.KV/Txn  InvalidArgument 0 put:a put:b put:c",
		"/etcdserverpb.KV/Compact  OK 3",
	}
	var lines []string
	for _, l := range got {
		s := strings.Join([]string{l.RPC, l.Key, l.Outcome, itoa(l.Revision)}, " ")
		for _, op := range l.Ops {
			s += " " + op.Type + ":" + op.Key
		}
		lines = append(lines, s)
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got[2].Message != "etcdserver: too many operations in txn request" || got[3].Detail != "revision=2" {
		t.Errorf("refused txn %+v, compaction %+v", got[2], got[3])
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
