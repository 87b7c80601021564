package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestServeCorruptionCheckFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		initial bool
		every   time.Duration
		notes   int
	}{
		{args: nil},
		{args: []string{"--feature-gates=InitialCorruptCheck=true", "--corrupt-check-time=5m"}, initial: true, every: 5 * time.Minute},
		{args: []string{"--feature-gates=AllAlpha=true"}, initial: true},
		{args: []string{"--feature-gates=AllAlpha=true,InitialCorruptCheck=false"}},
		{args: []string{"--feature-gates= InitialCorruptCheck = true , LeaseCheckpoint=true"}, initial: true, notes: 1},
		{args: []string{"--feature-gates=StopGRPCServiceOnDefrag=true", "--feature-gates=InitialCorruptCheck=true"}, initial: true, notes: 1},
		{env: map[string]string{"ETCD_FEATURE_GATES": "InitialCorruptCheck=true", "ETCD_CORRUPT_CHECK_TIME": "30s"}, initial: true, every: 30 * time.Second},
	} {
		var stderr bytes.Buffer
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		fs, f := newServeFlagSet(&stderr)
		if err := f.parse(fs, tc.args); err != nil {
			t.Errorf("%v %v: %v", tc.args, tc.env, err)
			continue
		}
		if f.cfg.InitialCorruptCheck != tc.initial || f.cfg.CorruptCheckTime != tc.every || len(f.gateNotes) != tc.notes {
			t.Errorf("%v %v: initial check %v, every %v, notes %q; want %v, %v, %d notes",
				tc.args, tc.env, f.cfg.InitialCorruptCheck, f.cfg.CorruptCheckTime, f.gateNotes, tc.initial, tc.every, tc.notes)
		}
	}
}

func TestServeRejectsBadFeatureGates(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		// etcd's own messages, after Go's flag package prefix.
		{"--feature-gates=Bogus=true", `invalid value "Bogus=true" for flag -feature-gates: unrecognized feature gate: Bogus`},
		{"--feature-gates=InitialCorruptCheck=maybe", `invalid value "InitialCorruptCheck=maybe" for flag -feature-gates: invalid value of InitialCorruptCheck=maybe, err: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{"--feature-gates=InitialCorruptCheck", "missing bool value for InitialCorruptCheck"},
		{"--corrupt-check-time=often", `invalid value "often" for flag -corrupt-check-time`},
	} {
		_, err := parseServe(t, []string{tc.arg}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.arg, err, tc.want)
		}
	}
}
