package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bad flags, variables and configuration files get etcd's answer from
// synod serve: the same exit code and the same message, compared with
// testdata/flag-errors.golden, recorded from etcd 3.7.3
// (-run TestServeFlagErrorsMatchEtcd -update re-records it).

const flagErrorsGolden = "testdata/flag-errors.golden"

// flagErrorCase is one refused invocation. file, when set, is written to
// etcd.yaml in the working directory first.
type flagErrorCase struct {
	name string
	args []string
	env  []string
	file string
}

var flagErrorCases = []flagErrorCase{
	{name: "unknown-flag", args: []string{"--bogus"}},
	{name: "bad-number", args: []string{"--election-timeout=abc"}},
	{name: "stray-argument", args: []string{"stray"}},
	{name: "env-bad-value", env: []string{"ETCD_ELECTION_TIMEOUT=abc"}},
	{name: "env-shadowed-by-flag", args: []string{"--name=y"}, env: []string{"ETCD_NAME=x"}},
	{name: "election-too-short", args: []string{"--election-timeout=300"}},
	{name: "election-too-long", args: []string{"--election-timeout=60000"}},
	{name: "heartbeat-zero", args: []string{"--heartbeat-interval=0"}},
	{name: "cluster-state", args: []string{"--initial-cluster-state=maybe"}},
	{name: "url-scheme", args: []string{"--listen-client-urls=localhost"}},
	{name: "listen-without-advertise", args: []string{"--listen-client-urls=http://127.0.0.1:23790"}},
	{name: "feature-gate", args: []string{"--feature-gates=Bogus=true"}},
	{name: "v2-deprecation", args: []string{"--v2-deprecation=bogus"}},
	{name: "max-concurrent-streams", args: []string{"--max-concurrent-streams=-1"}},
	{name: "log-format", args: []string{"--log-format=xml"}},
	{name: "logger", args: []string{"--logger=capnslog"}},
	{name: "log-output", args: []string{"--log-outputs=stderr,/nonexistent/x.log"}},
	{name: "log-rotation-without-file", args: []string{"--enable-log-rotation"}},
	{name: "log-rotation-two-files", args: []string{"--enable-log-rotation", "--log-outputs=a.log,b.log"}},
	{name: "log-rotation-config", args: []string{"--enable-log-rotation", "--log-outputs=a.log", "--log-rotation-config-json={"}},
	{name: "discovery-fallback", args: []string{"--discovery-fallback=proxy"}},
	{name: "discovery-token-alone", args: []string{"--discovery-token=x"}},
	{name: "discovery-conflict", args: []string{"--initial-cluster=default=http://localhost:2380", "--discovery-srv=example.com"}},
	{name: "discovery-endpoints-conflict", args: []string{"--discovery-srv=example.com", "--discovery-endpoints=127.0.0.1:1", "--discovery-token=x"}},
	{name: "tracing-sampling-rate", args: []string{"--enable-distributed-tracing", "--distributed-tracing-sampling-rate=2000000"}},
	{name: "config-file-missing", args: []string{"--config-file=/nonexistent/etcd.yaml"}},
	{name: "config-file-syntax", args: []string{"--config-file=etcd.yaml"}, file: "name: [1\n"},
	{name: "config-file-type", args: []string{"--config-file=etcd.yaml"}, file: "heartbeat-interval: \"10s\"\n"},
	{name: "config-file-value", args: []string{"--config-file=etcd.yaml"}, file: "name: n1\nelection-timeout: 300\n"},
	{name: "config-file-from-env", env: []string{"ETCD_CONFIG_FILE=etcd.yaml"}, file: "name: n1\nheartbeat-interval: 0\n"},
}

// refusal runs bin with the case in a fresh directory and returns
// "exit N: message", the message being what etcd says: the error of its
// "failed to verify flags" line, the message of a fatal line, or else the
// first line that is not a log line (the flag package's own error).
func refusal(t *testing.T, bin string, pre []string, tc flagErrorCase) string {
	t.Helper()
	dir := t.TempDir()
	if tc.file != "" {
		if err := os.WriteFile(filepath.Join(dir, "etcd.yaml"), []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(pre, tc.args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") && !strings.HasPrefix(kv, "SYNOD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, tc.env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after 20s (it accepted the configuration):\n%s", bin, tc.args, firstLines(string(out), 10))
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	return fmt.Sprintf("exit %d: %s", code, refusalMessage(string(out)))
}

func refusalMessage(out string) string {
	first := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			if e, ok := rec["error"].(string); ok && rec["msg"] == "failed to verify flags" {
				return e
			}
			if rec["level"] == "fatal" {
				return fmt.Sprintf("%v (%v)", rec["msg"], rec["environment-variable"])
			}
			continue
		}
		if first == "" && strings.TrimSpace(line) != "" {
			first = line
		}
	}
	return first
}

func TestServeFlagErrorsMatchEtcd(t *testing.T) {
	requireKind(t, "synod")
	want := map[string]string{}
	if etcdBin != "" {
		var lines []string
		for _, tc := range flagErrorCases {
			want[tc.name] = refusal(t, etcdBin, nil, tc)
			lines = append(lines, tc.name+"\t"+want[tc.name])
		}
		if *update {
			body := "# etcd 3.7.3's refusals (exit code: message). Regenerate: go test ./tests/e2e/ -run TestServeFlagErrorsMatchEtcd -update\n" + strings.Join(lines, "\n") + "\n"
			if err := os.WriteFile(flagErrorsGolden, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, l := range readGoldenList(t, flagErrorsGolden) {
		name, msg, _ := strings.Cut(l, "\t")
		if live, ok := want[name]; ok && live != msg {
			t.Errorf("%s: etcd now says %q, the golden %q: re-record with -update", name, live, msg)
		}
		want[name] = msg
	}
	for _, tc := range flagErrorCases {
		if got := refusal(t, synodBin, []string{"serve"}, tc); got != want[tc.name] {
			t.Errorf("%s (%v %v):\n synod: %s\n etcd:  %s", tc.name, tc.args, tc.env, got, want[tc.name])
		}
	}
}
