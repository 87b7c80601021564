package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/synod-db/synod/server"
)

// parseServe parses args with env set for this call only.
func parseServe(t *testing.T, args []string, env map[string]string) (server.Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v) // marks the test as changing the environment
		defer os.Unsetenv(k)
	}
	var stderr bytes.Buffer
	fs, f := newServeFlagSet(&stderr)
	err := f.parse(fs, args)
	return f.cfg, err
}

func TestServeDefaultsAreASingleLocalMember(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "default" || c.DataDir != "default.synod" || c.ListenClientURLs[0] != "http://127.0.0.1:2379" ||
		c.MaxRequestBytes != 1536*1024 || c.MaxTxnOps != 128 || c.ElectionTimeout != time.Second ||
		c.HeartbeatInterval != 100*time.Millisecond || c.InitialClusterState != "new" {
		t.Fatalf("defaults: %+v", c)
	}
	if c, err := parseServe(t, []string{"--name=infra1"}, nil); err != nil || c.DataDir != "infra1.synod" {
		t.Fatalf("the data directory defaults to ${name}.synod, as etcd's to ${name}.etcd: %q %v", c.DataDir, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestServeFlagsEnvironmentAndPrecedence(t *testing.T) {
	c, err := parseServe(t,
		[]string{"--name=n1", "--election-timeout=2500", "--listen-client-urls=http://127.0.0.1:1,http://127.0.0.1:2", "--advertise-client-urls=http://127.0.0.1:1"},
		map[string]string{"SYNOD_DATA_DIR": "/from/synod", "ETCD_DATA_DIR": "/from/etcd", "ETCD_MAX_TXN_OPS": "7", "ETCD_UNKNOWN_THING": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "n1" {
		t.Errorf("command line: name %q", c.Name)
	}
	if c.DataDir != "/from/synod" {
		t.Errorf("SYNOD_ must win over ETCD_: data dir %q", c.DataDir)
	}
	if c.MaxTxnOps != 7 {
		t.Errorf("ETCD_ variables must carry over: max txn ops %d", c.MaxTxnOps)
	}
	if c.ElectionTimeout != 2500*time.Millisecond {
		t.Errorf("election timeout is in milliseconds as in etcd: %v", c.ElectionTimeout)
	}
	if len(c.ListenClientURLs) != 2 {
		t.Errorf("comma-separated URL lists: %v", c.ListenClientURLs)
	}
}

func TestServeRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--bogus"}, want: "flag provided but not defined: -bogus"},
		{args: []string{"stray"}, want: `"stray" is not a valid flag`},
		{args: []string{"--max-txn-ops=many"}, want: "invalid value"},
		{args: []string{"--name=a"}, env: map[string]string{"ETCD_NAME": "b"}, want: "conflicting environment variable is shadowed by corresponding command-line flag"},
		{args: []string{"--name=a"}, env: map[string]string{"SYNOD_NAME": "b"}, want: "conflicting environment variable is shadowed by corresponding command-line flag"},
		{args: []string{"--timer-slack=-1ms"}, want: "--timer-slack must be between 0 and 10ms, got -1ms"},
		{args: []string{"--timer-slack=1s"}, want: "--timer-slack must be between 0 and 10ms, got 1s"},
		{env: map[string]string{"SYNOD_ELECTION_TIMEOUT": "abc"}, want: `invalid value "abc" for SYNOD_ELECTION_TIMEOUT: parse error`},
	} {
		_, err := parseServe(t, tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: err %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestServeConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--initial-cluster-state=maybe"}, `invalid value "maybe" for flag -initial-cluster-state: invalid value`},
		{[]string{"--election-timeout=300", "--heartbeat-interval=100"}, "--election-timeout[300ms] should be at least as 5 times as --heartbeat-interval[100ms]"},
		{[]string{"--listen-client-urls=localhost"}, "URL scheme must be http, https, unix, or unixs: localhost"},
		{[]string{"--listen-client-urls=http://127.0.0.1:1"}, "--advertise-client-urls is required when --listen-client-urls is set explicitly"},
		{[]string{"--initial-cluster=a=http://127.0.0.1:9"}, "--initial-cluster has default="},
		{[]string{"--bcrypt-cost=3"}, "--bcrypt-cost must be between 4 and 31"},
		{[]string{"--bcrypt-cost=32"}, "--bcrypt-cost must be between 4 and 31"},
		{[]string{"--auth-token=oauth"}, `unknown token type "oauth"`},
		{[]string{"--compact-hash-check-time=0"}, "--compact-hash-check-time must be >0 (set to 0s)"},
	} {
		c, err := parseServe(t, tc.args, nil)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: code %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "synod version ") {
		t.Fatalf("version: code %d, out %q", code, out.String())
	}
}

func TestServeMembershipFlags(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxLearners != 1 || !c.StrictReconfigCheck {
		t.Fatalf("etcd's defaults: max learners %d, strict reconfig check %v", c.MaxLearners, c.StrictReconfigCheck)
	}
	c, err = parseServe(t, []string{"--max-learners=3"}, map[string]string{"ETCD_STRICT_RECONFIG_CHECK": "false"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxLearners != 3 || c.StrictReconfigCheck {
		t.Fatalf("max learners %d, strict reconfig check %v", c.MaxLearners, c.StrictReconfigCheck)
	}
	c.MaxLearners = -1
	if err := c.Validate(); err == nil {
		t.Fatal("negative --max-learners accepted")
	}
}

func TestServeAuthFlags(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.BcryptCost != 10 || c.AuthTokenTTL != 300*time.Second {
		t.Fatalf("etcd's defaults: bcrypt cost %d, token TTL %v", c.BcryptCost, c.AuthTokenTTL)
	}
	c, err = parseServe(t, []string{"--bcrypt-cost=4", "--auth-token=jwt,sign-method=RS256"}, map[string]string{"ETCD_AUTH_TOKEN_TTL": "60"})
	if err != nil {
		t.Fatal(err)
	}
	if c.BcryptCost != 4 || c.AuthTokenTTL != time.Minute {
		t.Fatalf("bcrypt cost %d, token TTL %v", c.BcryptCost, c.AuthTokenTTL)
	}
}

func TestServeVersionFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runServe([]string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "synod version ") {
		t.Fatalf("serve --version: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
