package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCheckRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nemesis", "meteor"}, `unknown nemesis "meteor"`},
		{[]string{"--workload", "bank"}, `unknown workload "bank"`},
		{[]string{"--nodes", "0", "--nemesis", "none"}, "--nodes must be at least 1"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--duration", "soon"}, "invalid value"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"check", "--report", ""}, tc.args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("check %v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestCheckHelpListsNemesesAndWorkloads(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"-seed", "pause-leader", "partition-bridge", "lost-writes", "txn", "watch", "Exit status"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
