package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The golden tests run scripts of etcdctl commands against ONE 3-member
// cluster per kind, sequentially, and compare the normalized transcript of
// each script with testdata/<script>.golden, recorded from real etcd
// (-update). Before script k runs, the cluster's revision is padded up to
// scriptBase(k) with writes to a scratch key, so every script starts at a
// fixed revision whatever ran before it: scripts can be run alone with -run,
// and a revision divergence in one script does not cascade into the next.
//
// Revisions are NOT normalized: the server must produce etcd's exact
// revisions. Only what legitimately differs between two clusters is:
// cluster_id, member_id and raft_term in headers (when nonzero), and the
// timestamp / connection details of clientv3's retry log lines on stderr.

// goldenClusterFlags are given to every member of the golden cluster.
var goldenClusterFlags = []string{"--max-txn-ops=4", "--max-request-bytes=1024"}

const (
	revsPerScript = 100    // revision budget of one script
	padKey        = "~pad" // scratch key written to pad the revision; sorts after every script key
	goldenHeader  = "# etcdctl transcript recorded from a 3-member etcd v3.7.3 cluster (" +
		"--max-txn-ops=4 --max-request-bytes=1024).\n" +
		"# Regenerate: go test ./tests/e2e/ -run 'TestEtcdctl/etcd' -update\n" +
		"# Lines: '=== [target] <args>' command, '< ' stdin, '1| ' stdout, '2| ' stderr, '1% ' stdout note, 'exit N';\n" +
		"# 'Nq ' lines are Go-quoted (raw bytes). [leader]/[follower]: sent to that member only, else to all endpoints.\n" +
		"# Normalized: nonzero cluster_id/member_id/raft_term; clientv3 retry-log timestamps and peers.\n" +
		"# In -w protobuf output, nonzero cluster_id/member_id/raft_term are set to 1/2/3 before re-encoding.\n"
)

func scriptBase(k int) int64 { return int64(revsPerScript * (k + 1)) }

// step is one etcdctl invocation. cmd is shell-quoted ("" is an empty
// argument); ${name} and ${name+N} / ${name-N} are substituted from the
// script's variables (in cmd and stdin).
type step struct {
	cmd     string
	stdin   string
	sync    bool   // wait until every member applied everything first (serializable reads)
	capture string // store the header revision of this step's -w json stdout as a variable
	via     string // "": all endpoints (the balancer picks); "leader" / "follower": that member only
	// sentinel makes this a watch step: etcdctl runs in the background, this
	// key is put (value "end-<step>"), and etcdctl is stopped once it printed
	// that event (or when it exits by itself). Watches must use --rev.
	sentinel string
}

// w is a watch step (see step.sentinel).
func w(cmd, sentinel string) step { return step{cmd: cmd, sentinel: sentinel} }

func c(cmd string) step { return step{cmd: cmd} }

// in sets the step's standard input.
func (s step) in(stdin string) step { s.stdin = stdin; return s }

// synced makes the step wait for all members to converge before running.
func (s step) synced() step { s.sync = true; return s }

// as captures the header revision of the step's JSON output as variable name.
func (s step) as(name string) step { s.capture = name; return s }

// onLeader sends the step to the current leader only.
func (s step) onLeader() step { s.via = "leader"; return s }

// onFollower sends the step to one follower only (forwarding, ReadIndex and
// follower-side error paths).
func (s step) onFollower() step { s.via = "follower"; return s }

type script struct {
	name  string
	steps []step
}

// bigValues are variables available to every script.
var bigValues = map[string]string{
	"X900":  strings.Repeat("x", 900),
	"X2000": strings.Repeat("y", 2000),
	"X600K": strings.Repeat("z", 600*1024),
}

// goldenScripts is the table of scripts, run in this order.
func goldenScripts() []script {
	return []script{
		{"put", []step{
			c("put p/a v1"),
			c("put p/a v2 --prev-kv"),
			c("put p/a v3 -w json"),
			c("put p/a v4 --prev-kv -w json"),
			c("put p/a v5 --prev-kv -w fields"),
			c("put p/a v6 -w protobuf"),
			c("put p/a v7 --prev-kv -w protobuf"),
			c("put p/a v8 --prev-kv --hex -w fields"),
			c("put p/a --ignore-value"),
			c("get p/a -w json"),
			c("put p/a --ignore-value --prev-kv"),
			c("put p/a v9 --ignore-lease -w json"),
			c("put p/a --ignore-value --ignore-lease --prev-kv -w json"),
			c("get p/a -w fields"),
			c("put p/missing --ignore-value"),
			c("put p/missing x --ignore-lease"),
			c("put p/missing x --lease=123"),
			c("put p/a x --lease=123"),
			c("put p/a x --lease=123 --prev-kv -w json"),
			c("get p/missing -w json"),
			c("get p/a -w json"),
			c(`put p/empty ""`),
			c("get p/empty -w json"),
			c("get p/empty"),
			c(`put "" v`),
			c(`put p/space "hello world"`),
			c("put p/ü ü"),
			c("put p/stdin").in("from stdin\n"),
			c("put p/a --ignore-value extra"),
			c("put p/a v10 --lease=zz"),
			c("put"),
			c("get p/ --prefix"),
			c("get p/ --prefix -w json"),
			// the same through one follower (forwarded writes, ReadIndex reads) and the leader
			c("put p/f1 v --prev-kv -w json").onFollower(),
			c("put p/f1 w --prev-kv -w json").onFollower(),
			c("put p/l1 v --prev-kv -w json").onLeader(),
			c("get p/f1 -w json").onFollower(),
			c("get p/ --prefix --keys-only").onFollower(),
			c("get p/f1 --consistency=s -w json").onFollower().synced(),
			c("put p/missing --ignore-value").onFollower(),
			c("put p/a x --lease=123").onFollower(),
			c(`put "" v`).onFollower(),
			c("put p/missing --ignore-lease").onLeader(),
		}},
		{"get", getSteps()},
		{"del", []step{
			c("put zdel/a 1"),
			c("put zdel/b 2"),
			c("put zdel/c 3"),
			c("put zdel/d 4"),
			c("put zdel/e 5"),
			c("put zdel0 x"),
			c("put zdek x"),
			c("del zdel/a"),
			c("del zdel/zzz"),
			c("del zdel/a"),
			c("del zdel/a -w json"),
			c("del zdel/b --prev-kv"),
			c("del zdel/c zdel/e --range --prev-kv -w json"),
			c("get zdel --prefix"),
			c("put zdel/a 1"),
			c("put zdel/b 2"),
			c("del zdel/ --prefix -w fields"),
			c("del zdel/ --prefix"),
			c("put zdel/a 1"),
			c("del zdel/ --prefix --prev-kv -w protobuf"),
			c("put zdel/x 1"),
			c("put zdel/y 2"),
			c("del zdel/x --from-key"),
			c("get zdel --prefix"),
			c("put zdel/a 1"),
			c("del zdel/a --prev-kv --hex -w fields"),
			c(`del ""`),
			c(`del "" --prefix`),
			c("del zdel/a --prefix --from-key"),
			c("del zdel/a zdel/b --range --prefix"),
			c("del"),
			c("get zdek --prefix -w json"),
			c("put zdel/f 1").onFollower(),
			c("del zdel/f --prev-kv -w json").onFollower(),
			c("del zdel/f --prev-kv -w json").onFollower(),
			c(`del ""`).onFollower(),
		}},
		{"txn", txnSteps()},
		{"errors", []step{
			c(`put "" v`),
			c(`get ""`),
			c(`get "" -w json`),
			c(`del ""`),
			c("put e/big ${X2000}"),
			c("put e/ok ${X900} -w json").as("r0"),
			c("get e/ok --count-only -w fields"),
			c("get e/big -w json"),
			txn("", nil, L("put e/1 1", "put e/2 2", "put e/3 3", "put e/4 4", "put e/5 5"), nil),
			txn("", nil, nil, L("put e/1 1", "put e/2 2", "put e/3 3", "put e/4 4", "put e/5 5")),
			txn("", L(`version("e/1") = "0"`, `version("e/2") = "0"`, `version("e/3") = "0"`, `version("e/4") = "0"`, `version("e/5") = "0"`), nil, nil),
			txn("-w json", nil, L("put e/1 1", "put e/2 2", "put e/3 3", "put e/4 4"), L("put e/1 1", "put e/2 2", "put e/3 3", "put e/4 4")),
			txn("", L(`version("e/1") = "1"`, `version("e/2") = "1"`, `version("e/3") = "1"`, `version("e/4") = "1"`), L("get e/1", "get e/2", "get e/3", "get e/4"), L("get e/1", "get e/2", "get e/3", "get e/4")),
			txn("", nil, L("put e/dup 1", "put e/dup 2"), nil),
			txn("", nil, nil, L("put e/dup 1", "put e/dup 2")),
			txn("", nil, L("put e/dup 1", "del e/dup"), nil),
			txn("", nil, L("del e/a e/c --range", "put e/b 1"), nil),
			txn("", nil, L("del e/ --prefix", "put e/b 1"), nil),
			txn("", nil, L("put e/big ${X2000}"), nil),
			txn("", nil, L("put e/huge ${X600K}"), nil),
			c("put e/ok2 ${X900} --prev-kv"),
			c("get e/ --prefix --rev=${r0+1000}"),
			c("get e/ok --rev=${r0+1000} -w json"),
			c("get e/ --prefix --from-key"),
			c("get e/ok --sort-by=BAD"),
			c("get e/ok --order=SIDEWAYS"),
			c("get e/ok --count-only"),
			c("get e/ok --keys-only --count-only -w fields"),
			c("get e/ok --print-value-only -w json"),
			c("get e/ok -w table"),
			c("get e/ok -w yaml"),
			c("get"),
			c("compaction abc"),
			c("compaction"),
			c("txn extra-arg"),
			txn("", L("bogus compare"), nil, nil),
			txn("", nil, L("frobnicate e/x"), nil),
			c("get e/ --prefix --keys-only"),
			c("put e/big ${X2000}").onFollower(),
			c("put e/big ${X2000}").onLeader(),
			txn("", nil, L("put e/huge ${X600K}"), nil).onFollower(),
			txn("", nil, L("put e/1 1", "put e/2 2", "put e/3 3", "put e/4 4", "put e/5 5"), nil).onFollower(),
			c(`get ""`).onFollower(),
			c("get e/ --prefix --rev=${r0+1000} --consistency=s").onFollower().synced(),
		}},
		{"bytes", bytesSteps()},
		{"watch", watchSteps()},
		{"compaction", compactionSteps()},
		{"watch-compacted", []step{
			c("put wc/a 1 -w json").as("a0"),
			c("put wc/a 2 -w json").as("a1"),
			c("put wc/b 3"),
			c("compaction ${a1}"),
			w("watch wc/ --prefix --rev=${a1}", "wc/zz"),
			w("watch wc/ --prefix --rev=${a1} --prev-kv", "wc/zz").onFollower(),
			w("watch wc/ --prefix --rev=${a0}", "wc/zz"),
			w("watch wc/a --rev=${a0} --prev-kv", "wc/a").onFollower(),
			w("watch wc/ --prefix --rev=1", "wc/zz"),
			c("get wc/ --prefix -w json"),
		}},
	}
}

// getSteps writes five keys whose create, mod, version and value orders all
// differ from the key order (no ties), then reads them with every get flag.
func getSteps() []step {
	s := []step{
		c("put g/c m -w json").as("g0"), // c: create g0,    version 1, mod g0
		c("put g/a q"),                  // a: create g0+1,  version 3, mod g0+12
		c("put g/e b"),                  // e: create g0+2,  version 4, mod g0+11
		c("put g/b x"),                  // b: create g0+3,  version 2, mod g0+14
		c("put g/d f"),                  // d: create g0+4,  version 5, mod g0+13
		c("put g/d f"),
		c("put g/e b"),
		c("put g/a q"),
		c("put g/d f"),
		c("put g/e b"),
		c("put g/d f"),
		c("put g/e b"),
		c("put g/a q"),
		c("put g/d f"),
		c("put g/b x"),
		c("put g z"), // outside the g/ prefix, on both sides
		c("put g0 z"),
		c("put f/z z"),
		c("get g/a"),
		c("get g/a -w json"),
		c("get g/a -w fields"),
		c("get g/a -w protobuf"),
		c("get g/a -w simple"),
		c("get g/a --hex -w fields"),
		c("get g/a --hex -w json"),
		c("get g/nope"),
		c("get g/nope -w json"),
		c("get g/nope -w fields"),
		c("get g/b g/d"),
		c("get g/b g/d -w json"),
		c("get g/ --prefix"),
		c("get g/ --prefix -w json"),
		c("get g/ --prefix -w fields"),
		c("get g/ --prefix -w protobuf"),
		c("get g/ --prefix --keys-only"),
		c("get g/ --prefix --keys-only -w json"),
		c("get g/ --prefix --count-only -w fields"),
		c("get g/ --prefix --count-only -w json"),
		c("get g/ --prefix --print-value-only"),
		c("get g/ --prefix --limit=2"),
		c("get g/ --prefix --limit=2 -w json"),
		c("get g/ --prefix --limit=2 -w fields"),
		c("get g/ --prefix --limit=5 -w json"),
		c("get g/ --prefix --limit=6 -w fields"),
		c("get g/ --prefix --limit=-1"),
		c("get g/c --from-key --limit=4"),
		c("get g/c --from-key --limit=4 --keys-only"),
		c("get g/ --prefix --from-key"),
		c("get g/a g/c --prefix"),
	}
	for _, target := range []string{"KEY", "VERSION", "CREATE", "MODIFY", "VALUE"} {
		s = append(s,
			c("get g/ --prefix --sort-by="+target),
			c("get g/ --prefix --sort-by="+target+" --order=ASCEND"),
			c("get g/ --prefix --sort-by="+target+" --order=DESCEND -w json"),
		)
	}
	s = append(s,
		c("get g/ --prefix --order=DESCEND"),
		c("get g/ --prefix --order=descend --sort-by=value"),
		c("get g/ --prefix --sort-by=VALUE --order=DESCEND --limit=2 -w json"),
		c("get g/ --prefix --sort-by=MODIFY --limit=3"),
		c("get g/ --prefix --sort-by=CREATE --order=DESCEND --keys-only --limit=2"),
		c("get g/ --prefix --rev=${g0+4}"),
		c("get g/ --prefix --rev=${g0+4} -w json"),
		c("get g/ --prefix --rev=${g0} -w fields"),
		c("get g/ --prefix --rev=${g0-1} -w json"),
		c("get g/a --rev=${g0+7} -w json"),
		c("get g/ --prefix --rev=${g0+10} --sort-by=VERSION --order=DESCEND"),
		c("get g/ --prefix --min-mod-rev=${g0+12}"),
		c("get g/ --prefix --max-mod-rev=${g0+11}"),
		c("get g/ --prefix --min-create-rev=${g0+2}"),
		c("get g/ --prefix --max-create-rev=${g0+1}"),
		c("get g/ --prefix --min-create-rev=${g0+1} --max-create-rev=${g0+3} --min-mod-rev=${g0+12}"),
		c("get g/ --prefix --min-mod-rev=${g0+12} -w json"),
		c("get g/ --prefix --min-mod-rev=${g0+12} --limit=1 -w json"),
		c("get g/ --prefix --max-create-rev=${g0+1} --count-only -w fields"),
		c("get g/ --prefix --min-mod-rev=${g0+12} --rev=${g0+13} -w json"),
		c("get g/ --prefix --consistency=l -w json"),
		c("get g/ --prefix --consistency=s -w json").synced(),
		c("get g/ --prefix --consistency=s --rev=${g0+4}").synced(),
		c("get g/ --prefix --consistency=s --limit=1 -w fields").synced(),
		c("get g/ --prefix --consistency=x"),
		c("get g/ --prefix --stream"),
		c("get g/ --prefix --stream -w json"),
		c("get g/ --prefix --stream -w fields"),
		c("get g/ --prefix --stream --limit=2 -w json"),
		c("get g/ --prefix --stream --sort-by=VALUE --order=DESCEND"),
		c("get g/ --prefix --stream --keys-only"),
		c("get g/ --prefix --stream --count-only -w fields"),
		c("get g/ --prefix --stream --rev=${g0+4} -w json"),
		c("get g/ --prefix --stream --min-mod-rev=${g0+12}"),
		c("get g/ --prefix --stream --consistency=s -w json").synced(),
		c("get g/nope --stream -w json"),
		c("get g/a --stream -w protobuf"),
		c("get g/ --prefix --stream --rev=${g0+1000}"),
		c("get g/ --prefix --sort-by=MODIFY --limit=3 -w json").onFollower(),
		c("get g/ --prefix --rev=${g0+4} -w json").onFollower(),
		c("get g/ --prefix --rev=${g0+4} --consistency=s -w json").onFollower().synced(),
		c("get g/ --prefix --min-mod-rev=${g0+12} --count-only -w fields").onFollower(),
		c("get g/ --prefix --stream -w json").onFollower(),
		c("get g/ --prefix --stream --consistency=s --limit=2 -w json").onFollower().synced(),
		c("get g/ --prefix --rev=${g0+1000}").onFollower(),
		c("get g/ --prefix --rev=${g0+1000} --consistency=s").onFollower().synced(),
	)
	return s
}

// txn builds an etcdctl txn step whose stdin has the three sections
// (compares, success ops, failure ops), each terminated by an empty line.
func txn(flags string, cmps, then, els []string) step {
	var b strings.Builder
	for _, sec := range [][]string{cmps, then, els} {
		for _, l := range sec {
			b.WriteString(l + "\n")
		}
		b.WriteString("\n")
	}
	return c(strings.TrimSpace("txn " + flags)).in(b.String())
}

// L is a list of txn lines.
func L(lines ...string) []string { return lines }

func txnSteps() []step {
	return []step{
		c("put t/k1 v1 -w json").as("r1"),
		c("put t/k2 v2 -w json").as("r2"),
		txn("-i", L(`value("t/k1") = "v1"`), L("put t/k3 v3", "get t/k1"), L("del t/k2")),
		txn("", L(`value("t/k1") = "nope"`), L("put t/never x"), L("put t/k4 v4", "get t/ --prefix")),
		c("get t/ --prefix"),
		txn("-w json",
			L(`mod("t/k1") > "0"`, `version("t/k1") = "1"`, `create("t/k1") = "${r1}"`, `value("t/k3") != "x"`),
			L("del t/k4 --prev-kv", "get t/ --prefix --keys-only"),
			L("put t/never x")),
		txn("-w json",
			L(`version("t/k1") = "2"`),
			L("put t/never x"),
			L("put t/k5 v5 --prev-kv", "put t/k1 v1b --prev-kv", "get t/k1", "get t/ --prefix --count-only")),
		txn("-w fields",
			L(`create("t/k1") < "${r1+1}"`, `mod("t/k1") > "${r1}"`),
			L("get t/k1", "get t/ --prefix --limit=1", "del t/nothing"),
			nil),
		txn("-w protobuf",
			L(`value("t/k1") = "v1b"`),
			L("put t/k6 v6", "del t/k5 --prev-kv", "get t/k6"),
			L("get t/k1")),
		txn("-w protobuf", L(`value("t/k1") = "nope"`), nil, L("get t/k1", "put t/k1 v1c --prev-kv")),
		// compares against a missing key: version/create/mod are 0, value never matches
		txn("", L(`version("t/missing") = "0"`, `create("t/missing") = "0"`, `mod("t/missing") < "1"`), L("get t/missing"), L("put t/never x")),
		txn("", L(`value("t/missing") = ""`), L("put t/never x"), L("get t/missing")),
		txn("", L(`value("t/missing") != "x"`), L("put t/never x"), L("get t/missing")),
		// value comparisons are byte-wise
		txn("", L(`value("t/k1") > "v1a"`, `value("t/k1") < "v1d"`, `value("t/k1") != "v1"`, `version("t/k1") != "1"`), L("get t/k1"), L("put t/never x")),
		txn("", L(`value("t/k1") > "v1c"`), L("put t/never x"), L("get t/k1")),
		txn("", L(`version("t/k1") > "2"`), L("get t/k1"), L("put t/never x")),
		txn("", L(`ver("t/k1") < "1"`), L("put t/never x"), L("get t/k1 --keys-only")),
		txn("", L(`c("t/k1") = "${r1}"`, `m("t/k1") = "${r1}"`), L("put t/never x"), L("get t/k1")),
		// one false compare among true ones fails the txn
		txn("-w json", L(`version("t/k1") > "0"`, `create("t/k1") = "${r1}"`, `value("t/k2") = "v2"`), L("put t/never x"), L("get t/k2")),
		// empty transaction: succeeds, no new revision
		txn("", nil, nil, nil),
		txn("-w json", nil, nil, nil),
		txn("-w json", nil, nil, L("get t/k1")),
		txn("-w json", L(`version("t/k1") = "0"`), nil, nil),
		// read your own writes within a txn
		txn("-w json", nil, L("put t/k7 v7", "get t/k7", "get t/ --prefix --count-only"), nil),
		txn("-w json", nil, L("del t/k7 --prev-kv", "get t/k7", "get t/k6"), nil),
		// overlapping deletes are allowed; a put inside a delete range is not; nor two puts of one key
		txn("-w json", nil, L("del t/a t/c --range", "del t/b t/d --range"), nil),
		txn("", nil, L("del t/a t/k9 --range", "put t/k3 x"), nil),
		txn("", nil, L("put t/k3 x", "put t/k3 y"), nil),
		txn("", nil, L("put t/k3 x", "del t/k3"), nil),
		txn("", nil, L("del t/ --prefix", "put t/k3 x"), nil),
		// the same key in both branches is fine
		txn("", L(`version("t/k3") = "1"`), L("put t/k3 s"), L("put t/k3 f")),
		txn("-w json", nil, L("get t/ --prefix --rev=${r1}", "get t/ --prefix --limit=2 --sort-by=MODIFY --order=DESCEND"), nil),
		txn("", nil, L("get t/ --prefix --rev=${r2} --keys-only", "get t/k1 t/k3 --count-only"), nil),
		txn("", nil, L("get t/k1 --rev=${r1+1000}"), nil),
		txn("", nil, L("put t/k8 v8 --lease=123"), nil),
		txn("", nil, L("put t/missing --ignore-value"), nil),
		txn("-w json", nil, L("put t/k1 --ignore-value --prev-kv"), nil),
		txn("", nil, L("put t/k1 v --ignore-lease"), L("get t/k1")),
		txn("", nil, L("put t/k9 v", "put t/k10 v", "put t/k11 v", "put t/k12 v"), L("put t/k9 v", "put t/k10 v", "put t/k11 v", "put t/k12 v")),
		txn("-w json", nil, L(`put "" v`), nil),
		txn("-w json", nil, L(`get ""`), nil),
		txn("-w json", L(`value("") = "x"`), nil, nil),
		txn("", nil, L("get t/k10 --from-key --limit=2 --keys-only", "del t/k10 t/k12 --range --prev-kv"), L("put t/never x")),
		c("get t/ --prefix -w json"),
		c("get t --prefix -w json"),
		txn("-w json", L(`version("t/k1") > "0"`), L("put t/f1 v --prev-kv", "get t/k1 --keys-only"), L("get t/k1")).onFollower(),
		txn("-w json", L(`version("t/k1") = "0"`), L("put t/never x"), L("put t/f1 w --prev-kv", "del t/k6 --prev-kv")).onFollower(),
		txn("", nil, L("put t/f1 x", "put t/f1 y"), nil).onFollower(),
		txn("", nil, L("put t/f1 x", "put t/f2 x", "put t/f3 x", "put t/f4 x", "put t/f5 x"), nil).onFollower(),
		txn("", nil, L("get t/k1 --rev=${r1+1000}"), nil).onFollower(),
		c("get t/f --prefix -w json").onLeader(),
	}
}

// bytesSteps uses keys and values that are not printable text: 0xff bytes
// (the prefix range end computation), control bytes, and their sort orders.
func bytesSteps() []step {
	return []step{
		c("put b/\xff v1 -w json").as("r0"),
		c("put b/\xff\xff v2"),
		c("put b/\xfe\xff v3"),
		c("put \"b/\x01\" \x7f\x80"),
		c("put b/ exact"),
		c("put b0 outside"),
		c("put \"b/\x01\x02\" \"\x01\t\x7f\""),
		c("put b/é \xff"),
		c("get b/ --prefix"),
		c("get b/ --prefix -w json"),
		c("get b/ --prefix --hex"),
		c("get b/ --prefix --hex -w fields"),
		c("get b/\xff --prefix -w json"),
		c("get b/\xfe --prefix --keys-only"),
		c("get b/\xff\xff --prefix --keys-only"),
		c("get \xff --prefix -w json"),
		c("get \xff\xff --from-key -w json"),
		c("get b/\xfe b/\xff\xff --keys-only"),
		c("get b/ --prefix --sort-by=VALUE --keys-only"),
		c("get b/ --prefix --sort-by=VALUE --order=DESCEND --keys-only --hex"),
		c("get b/ --prefix --sort-by=KEY --order=DESCEND -w json"),
		c("get b/ --prefix --stream --keys-only"),
		txn("", L("value(\"b/\\x01\") = \"\\x7f\\x80\""), L("get b/\xff --prefix"), L("put b/never x")),
		txn("", L("value(\"b/\\x01\") > \"\\x7f\""), L("del b/\xff --prefix --prev-kv"), L("put b/never x")),
		c("get b/ --prefix --keys-only --hex"),
		c("del b/ --prefix --prev-kv -w json"),
		c("get b --prefix -w json"),
	}
}

// watchSteps replays history through etcdctl watch --rev (simple output
// only: JSON/fields print one header per response, and how events are
// batched into responses is not deterministic).
func watchSteps() []step {
	return []step{
		c("put w/a 1 -w json").as("w0"),
		c("put w/b 2"),
		c("put w/a 3"),
		c("del w/b"),
		txn("", nil, L("put w/d 4", "put w/e 5", "put w/c 6"), nil),
		c("del w/d w/f --range"),
		c("put w0 outside"),
		c("put w/a 7"),
		w("watch w/a --rev=${w0}", "w/a"),
		w("watch w/ --prefix --rev=${w0}", "w/zz"),
		w("watch w/ --prefix --rev=${w0} --prev-kv", "w/zz"),
		w("watch w/b w/e --rev=${w0}", "w/b"),
		w("watch w/ --prefix --rev=${w0+3}", "w/zz"),
		w("watch w/c --rev=${w0+4} --prev-kv", "w/c"),
		w("watch w/ --prefix --rev=${w0} --hex", "w/zz"),
		w("watch w --prefix --rev=${w0+5}", "w0"),
		w("watch w/ --prefix --rev=${w0+2} --prev-kv", "w/zz").onFollower(),
		w("watch w/nothing --rev=${w0}", "w/nothing"),
		c("get w --prefix -w json"),
	}
}

func compactionSteps() []step {
	return []step{
		c("put c/a x1 -w json").as("r1"),
		c("put c/a x2 -w json").as("r2"),
		c("put c/b y1"),
		c("del c/b"),
		c("put c/a x3 -w json").as("r3"),
		c("get c/a --rev=${r1}"),
		c("compaction ${r3+1000}"),
		c("compaction ${r2}"),
		c("get c/a --rev=${r1}"),
		c("get c/a --rev=${r1} -w json"),
		c("get c/a --rev=${r2} -w json"),
		c("get c/ --prefix --rev=${r2+1}"),
		c("get c/ --prefix --rev=${r2+2} -w json"),
		c("get c/a --rev=${r1} --stream"),
		c("get c/a --rev=${r1} --consistency=s").synced(),
		txn("", nil, L("get c/a --rev=${r1}"), nil),
		c("compaction ${r1}"),
		c("compaction ${r2}"),
		c("compaction 0"),
		c("compaction ${r3} --physical"),
		c("get c/a --rev=${r2}"),
		c("get c/a --rev=${r3}"),
		c("get c/a -w json"),
		c("get c/a --rev=${r3} --consistency=s -w json").synced(),
		c("get c/a --rev=${r2} --consistency=s").synced(),
		c("put c/a x4 -w json").as("r4"),
		c("compaction ${r4} -w json"),
		c("compaction ${r4+1}"),
		c("get c/a --rev=${r3}"),
		c("get c/ --prefix -w json"),
		c("get c/ --prefix --rev=${r4} -w json"),
		c("put c/a x5 -w json").as("r5"),
		c("put c/a x6 -w json").onFollower().as("r6"),
		c("compaction ${r5}").onFollower(),
		c("compaction ${r5}").onFollower(),
		c("compaction ${r6+1000}").onFollower(),
		c("get c/a --rev=${r4}").onFollower(),
		c("get c/a --rev=${r4} --consistency=s").onFollower().synced(),
		c("get c/a --rev=${r5} -w json").onFollower(),
		c("get c/a --rev=${r5} --stream -w json").onFollower(),
		c("get c/a --rev=${r4} --stream").onFollower(),
		txn("", nil, L("get c/a --rev=${r4}"), nil).onFollower(),
	}
}

// ---- running scripts ----

var varRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)([+-][0-9]+)?\}`)

func substitute(t testing.TB, s string, vars map[string]string) string {
	t.Helper()
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		v, ok := vars[m[1]]
		if !ok {
			t.Fatalf("undefined variable %s", ref)
		}
		if m[2] == "" {
			return v
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return v + m[2] // e.g. a capture that failed: keep it visibly wrong
		}
		d, _ := strconv.ParseInt(m[2], 10, 64)
		return strconv.FormatInt(n+d, 10)
	})
}

// splitArgs splits a shell-like command line: whitespace separates, "..." and
// '...' quote (no escapes), "" is an empty argument. It works on bytes, so
// arguments may hold any byte but NUL.
func splitArgs(s string) []string {
	var args []string
	var cur []byte
	inArg := false
	var quote byte
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case quote != 0:
			if b == quote {
				quote = 0
			} else {
				cur = append(cur, b)
			}
		case b == '"' || b == '\'':
			quote, inArg = b, true
		case b == ' ' || b == '\t' || b == '\n':
			if inArg {
				args = append(args, string(cur))
				cur = cur[:0]
				inArg = false
			}
		default:
			cur = append(cur, b)
			inArg = true
		}
	}
	if inArg {
		args = append(args, string(cur))
	}
	return args
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' {
			return false
		}
	}
	return true
}

// abbrev shortens a long argument or stdin line for the transcript.
func abbrev(s string) string {
	if len(s) <= 100 {
		return s
	}
	return fmt.Sprintf("<%d bytes: %s...>", len(s), s[:20])
}

func quoteArg(a string) string {
	a = abbrev(a)
	if a == "" || strings.ContainsAny(a, " \t\"'") || !printable(a) {
		return strconv.Quote(a)
	}
	return a
}

// padRevision writes padKey until the cluster's revision is target. It
// reports an error (and does nothing) if the revision is already past it.
func padRevision(t testing.TB, cl *Cluster, target int64) error {
	t.Helper()
	cli := newClient(t, cl.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gr, err := cli.Get(ctx, padKey)
	if err != nil {
		return fmt.Errorf("reading the revision: %v", err)
	}
	cur := gr.Header.Revision
	if cur > target {
		return fmt.Errorf("cluster is already at revision %d, past this script's start revision %d "+
			"(an earlier script consumed more than %d revisions, or wrote where etcd did not)", cur, target, revsPerScript)
	}
	// Puts are independent, so issue them concurrently; each adds exactly one revision.
	n := int(target - cur)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if _, err := cli.Put(ctx, padKey, "pad"); err != nil { // constant: the history is deterministic
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("padding put: %v", err)
	}
	gr, err = cli.Get(ctx, padKey)
	if err != nil {
		return err
	}
	if gr.Header.Revision != target {
		return fmt.Errorf("after %d padding puts from revision %d the revision is %d, want %d", n, cur, gr.Header.Revision, target)
	}
	return nil
}

// runScript runs the script's steps against the cluster and returns the
// normalized transcript.
func runScript(t *testing.T, cl *Cluster, sc script, base int64) string {
	vars := map[string]string{}
	for k, v := range bigValues {
		vars[k] = v
	}
	var out strings.Builder
	out.WriteString(goldenHeader)
	fmt.Fprintf(&out, "# script %q starts at revision %d\n", sc.name, base)
	for si, st := range sc.steps {
		args := splitArgs(substitute(t, st.cmd, vars))
		stdin := substitute(t, st.stdin, vars)
		if st.sync {
			cl.WaitConverged(30 * time.Second)
		}
		eps := cl.Endpoints()
		if st.via != "" {
			leader := cl.WaitLeader(30 * time.Second)
			target := leader
			if st.via == "follower" {
				target = (leader + 1) % len(cl.Members)
			}
			eps = []string{cl.Members[target].Endpoint}
		}
		began := time.Now()
		var stdout, stderr string
		var code int
		if st.sentinel != "" {
			stdout, stderr, code = runWatch(t, cl, eps, args, st.sentinel, fmt.Sprintf("end-%d", si))
		} else {
			stdout, stderr, code = etcdctlStdin(t, eps, stdin, args...)
		}
		if d := time.Since(began); d > 500*time.Millisecond {
			t.Logf("slow step (%v): etcdctl %s", d.Round(time.Millisecond), abbrev(strings.Join(args, " ")))
		}
		var q []string
		for _, a := range args {
			q = append(q, quoteArg(a))
		}
		via := ""
		if st.via != "" {
			via = "[" + st.via + "] "
		}
		out.WriteString("\n=== " + via + strings.Join(q, " ") + "\n")
		if stdin != "" {
			for _, l := range strings.Split(strings.TrimSuffix(stdin, "\n"), "\n") {
				if printable(l) {
					out.WriteString("< " + abbrev(l) + "\n")
				} else {
					out.WriteString("<q " + strconv.Quote(abbrev(l)) + "\n")
				}
			}
		}
		writeStream(&out, "1", normalizeStdout(args, stdout))
		writeStream(&out, "2", normalizeStderr(stderr))
		if code == watchStopped {
			fmt.Fprintf(&out, "stopped after the sentinel event (put %s end-%d)\n", st.sentinel, si)
		} else {
			fmt.Fprintf(&out, "exit %d\n", code)
		}
		if st.capture != "" {
			vars[st.capture] = captureRevision(stdout)
			if vars[st.capture] == "<no-revision>" {
				t.Errorf("%s: cannot capture ${%s}: no header revision in the output of %q", cl.Kind, st.capture, strings.Join(args, " "))
			}
		}
	}
	return out.String()
}

func writeStream(out *strings.Builder, fd, s string) {
	if s == "" {
		return
	}
	noEOL := !strings.HasSuffix(s, "\n")
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if printable(l) {
			out.WriteString(fd + "| " + l + "\n")
		} else {
			out.WriteString(fd + "q " + strconv.Quote(l) + "\n") // raw bytes, Go-quoted
		}
	}
	if noEOL {
		out.WriteString(fd + "% no newline at end\n")
	}
}

const watchStopped = -1000 // runWatch's code when it stopped etcdctl itself

// runWatch runs `etcdctl watch ...` in the background, puts sentinel=value,
// and stops etcdctl once its output shows that event; if etcdctl exits by
// itself first, its exit code is returned.
func runWatch(t *testing.T, cl *Cluster, eps, args []string, sentinel, value string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, etcdctlBin, append([]string{"--endpoints=" + strings.Join(eps, ",")}, args...)...)
	cmd.Env = etcdctlEnv()
	var o, e lockedBuffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatalf("etcdctl %s: %v", strings.Join(args, " "), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	cli := newClient(t, cl.Endpoints()...)
	if _, err := cli.Put(ctx, sentinel, value); err != nil {
		t.Errorf("watch sentinel put %s: %v", sentinel, err)
	}
	hexed := func(s string) string { // etcdctl --hex: every byte as \xNN
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "\\x%02x", s[i])
		}
		return b.String()
	}
	seen := func() bool {
		out := o.String()
		return strings.Contains(out, sentinel+"\n"+value+"\n") || strings.Contains(out, hexed(sentinel)+"\n"+hexed(value)+"\n")
	}
	select {
	case err := <-exited:
		return o.String(), e.String(), exitCode(t, err)
	default:
	}
	var exitErr error
	gone := false
	err := waitFor(30*time.Second, 10*time.Millisecond, func() (bool, error) {
		select {
		case exitErr = <-exited:
			gone = true
			return true, nil
		default:
		}
		return seen(), nil
	})
	if gone {
		return o.String(), e.String(), exitCode(t, exitErr)
	}
	_ = cmd.Process.Kill()
	<-exited
	if err != nil {
		t.Errorf("etcdctl %s: sentinel event %s=%s not printed: %v", strings.Join(args, " "), sentinel, value, err)
		return o.String(), e.String(), -1
	}
	return o.String(), e.String(), watchStopped
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("etcdctl: %v", err)
	}
	return ee.ExitCode()
}

// captureRevision returns header.revision from JSON output, or "<no-revision>".
func captureRevision(stdout string) string {
	var r struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Header.Revision == 0 {
		return "<no-revision>"
	}
	return strconv.FormatInt(r.Header.Revision, 10)
}

// ---- normalization ----

var (
	jsonIDRe   = regexp.MustCompile(`"(cluster_id|member_id|raft_term)":("[0-9a-f]*"|[0-9]+)`)
	fieldsIDRe = regexp.MustCompile(`(?m)^"(ClusterID|MemberID|RaftTerm)" : (\S+)$`)
	idTokens   = map[string]string{
		"cluster_id": "<CLUSTER_ID>", "member_id": "<MEMBER_ID>", "raft_term": "<RAFT_TERM>",
		"ClusterID": "<CLUSTER_ID>", "MemberID": "<MEMBER_ID>", "RaftTerm": "<RAFT_TERM>",
	}
)

func isZero(v string) bool { v = strings.Trim(v, `"`); return v == "0" || v == "" }

func normalizeStdout(args []string, s string) string {
	if outputFormat(args) == "protobuf" && s != "" {
		return normalizeProtobuf(args, s)
	}
	s = jsonIDRe.ReplaceAllStringFunc(s, func(m string) string {
		sm := jsonIDRe.FindStringSubmatch(m)
		if isZero(sm[2]) {
			return m
		}
		return fmt.Sprintf("%q:%q", sm[1], idTokens[sm[1]])
	})
	s = fieldsIDRe.ReplaceAllStringFunc(s, func(m string) string {
		sm := fieldsIDRe.FindStringSubmatch(m)
		if isZero(sm[2]) {
			return m
		}
		return fmt.Sprintf("%q : %s", sm[1], idTokens[sm[1]])
	})
	return s
}

func outputFormat(args []string) string {
	for i, a := range args {
		switch {
		case a == "-w" || a == "--write-out":
			if i+1 < len(args) {
				return args[i+1]
			}
		case strings.HasPrefix(a, "--write-out="):
			return strings.TrimPrefix(a, "--write-out=")
		case strings.HasPrefix(a, "-w="):
			return strings.TrimPrefix(a, "-w=")
		}
	}
	return "simple"
}

// normalizeProtobuf decodes etcdctl's -w protobuf output as the response
// type of the command, sets nonzero cluster_id/member_id/raft_term of every
// header to 1/2/3, and renders the re-encoded bytes as hex plus JSON.
func normalizeProtobuf(args []string, s string) string {
	var msg proto.Message
	switch args[0] {
	case "get":
		msg = &pb.RangeResponse{}
	case "put":
		msg = &pb.PutResponse{}
	case "del":
		msg = &pb.DeleteRangeResponse{}
	case "txn":
		msg = &pb.TxnResponse{}
	case "compaction":
		msg = &pb.CompactionResponse{}
	default:
		return "<protobuf of unknown type>\n" + hex.Dump([]byte(s))
	}
	if err := proto.Unmarshal([]byte(s), msg); err != nil {
		return fmt.Sprintf("<undecodable protobuf: %v>\n%s", err, hex.Dump([]byte(s)))
	}
	scrubHeaders(msg.ProtoReflect())
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return fmt.Sprintf("<re-marshal: %v>\n", err)
	}
	j, _ := json.Marshal(msg)
	return "json " + string(j) + "\n" + hex.Dump(b)
}

func scrubHeaders(m protoreflect.Message) {
	d := m.Descriptor()
	if d.FullName() == "etcdserverpb.ResponseHeader" {
		for i, name := range []protoreflect.Name{"cluster_id", "member_id", "raft_term"} {
			fd := d.Fields().ByName(name)
			if fd != nil && m.Has(fd) {
				m.Set(fd, protoreflect.ValueOfUint64(uint64(i+1)))
			}
		}
		return
	}
	var children []protoreflect.Message
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				children = append(children, v.List().Get(i).Message())
			}
		case fd.IsMap():
		default:
			children = append(children, v.Message())
		}
		return true
	})
	for _, ch := range children {
		scrubHeaders(ch)
	}
}

// normalizeStderr rewrites clientv3's JSON log lines (timestamps, connection
// pointers and the peer chosen by the balancer differ per run) to their stable
// fields; everything else is kept verbatim.
func normalizeStderr(s string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, `{"level":`) {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err == nil {
				out = append(out, fmt.Sprintf("[clientv3 log] level=%v msg=%q method=%v attempt=%v error=%q\n",
					m["level"], m["msg"], m["method"], m["attempt"], m["error"]))
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

// ---- comparing ----

func goldenPath(name string) string { return filepath.Join("testdata", name+".golden") }

// checkUpdatable fails a -update run of the reference kind that has no
// etcd binary to record from.
func checkUpdatable(t *testing.T, kind string) {
	t.Helper()
	if *update && kind == "etcd" && etcdBin == "" {
		t.Fatal("-update needs the real etcd binary: " + etcdSkip)
	}
}

// recordGolden writes got as testdata/<name>.golden in a -update run of
// etcd and reports whether it did (the caller then compares nothing).
func recordGolden(t *testing.T, kind, name, got string) bool {
	t.Helper()
	if !*update || kind != "etcd" {
		return false
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenPath(name), []byte(got), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", goldenPath(name))
	return true
}

// compareGolden reports every step whose transcript differs from the golden.
func compareGolden(t *testing.T, kind, name, got string) {
	t.Helper()
	wantB, err := os.ReadFile(goldenPath(name))
	if err != nil {
		t.Fatalf("reading golden (run with -update against etcd to create it): %v", err)
	}
	want := string(wantB)
	if got == want {
		return
	}
	wantSteps, gotSteps := splitSteps(want), splitSteps(got)
	n := max(len(wantSteps), len(gotSteps))
	diffs := 0
	for i := 0; i < n; i++ {
		var w, g string
		if i < len(wantSteps) {
			w = wantSteps[i]
		}
		if i < len(gotSteps) {
			g = gotSteps[i]
		}
		if w == g {
			continue
		}
		diffs++
		t.Errorf("%s: script %q step %d differs from etcd's golden %s\n--- expected (etcd):\n%s--- got (%s):\n%s",
			kind, name, i, goldenPath(name), indent(w), kind, indent(g))
	}
	if diffs == 0 {
		t.Errorf("%s: transcript of %q differs from %s (outside the steps)", kind, name, goldenPath(name))
	}
	if dir := os.Getenv("SYNOD_E2E_ACTUAL_DIR"); dir != "" {
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, kind+"-"+name+".actual"), []byte(got), 0o644)
	}
}

func splitSteps(s string) []string {
	parts := strings.Split(s, "\n=== ")
	for i := 1; i < len(parts); i++ {
		parts[i] = "=== " + parts[i]
	}
	return parts
}

func indent(s string) string {
	if s == "" {
		return "    <missing>\n"
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// synodPending names golden scripts whose feature synod does not have yet,
// with the issue that brings it. The goldens stay as etcd recorded them; each
// entry is removed when its feature lands.
var synodPending = map[string]string{}

// TestEtcdctl runs every golden script through the real etcdctl against one
// 3-member cluster per kind, then checks endpoint status/health and member
// list on the same cluster.
func TestEtcdctl(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			if *update && kind == "etcd" && etcdBin == "" {
				t.Fatal("-update needs the real etcd binary: " + etcdSkip)
			}
			cl := startCluster(t, kind, 3, goldenClusterFlags...)
			// etcd serves clients only after publishing its client URLs, so
			// once every member answers, member list shows all of them.
			t.Run("member-list-at-start", func(t *testing.T) { checkMemberURLsNow(t, cl) })
			for k, sc := range goldenScripts() {
				base := scriptBase(k)
				t.Run(sc.name, func(t *testing.T) {
					if reason, ok := synodPending[sc.name]; ok && kind == "synod" {
						t.Skip(reason)
					}
					if err := padRevision(t, cl, base); err != nil {
						t.Errorf("%s: script %q cannot start at revision %d: %v", kind, sc.name, base, err)
					}
					got := runScript(t, cl, sc, base)
					if *update && kind == "etcd" {
						if err := os.MkdirAll("testdata", 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(goldenPath(sc.name), []byte(got), 0o644); err != nil {
							t.Fatal(err)
						}
						t.Logf("wrote %s", goldenPath(sc.name))
						return
					}
					compareGolden(t, kind, sc.name, got)
				})
			}
			t.Run("cluster-info", func(t *testing.T) { checkClusterInfo(t, cl) })
		})
	}
}
