package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestServeCorruptionCheckFlags(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		env       map[string]string
		initial   bool
		every     time.Duration
		notes     int
		compact   bool
		hashEvery time.Duration // 0: the default, one minute
	}{
		{args: nil},
		{args: []string{"--feature-gates=InitialCorruptCheck=true", "--corrupt-check-time=5m"}, initial: true, every: 5 * time.Minute},
		{args: []string{"--feature-gates=AllAlpha=true"}, initial: true, compact: true},
		{args: []string{"--feature-gates=AllAlpha=true,InitialCorruptCheck=false"}, compact: true},
		{args: []string{"--feature-gates=AllAlpha=true,CompactHashCheck=false"}, initial: true},
		{args: []string{"--feature-gates=CompactHashCheck=true", "--compact-hash-check-time=30s"}, compact: true, hashEvery: 30 * time.Second},
		{args: []string{"--feature-gates= InitialCorruptCheck = true , LeaseCheckpoint=true"}, initial: true, notes: 1},
		{args: []string{"--feature-gates=StopGRPCServiceOnDefrag=true", "--feature-gates=InitialCorruptCheck=true"}, initial: true, notes: 1},
		{env: map[string]string{"ETCD_FEATURE_GATES": "InitialCorruptCheck=true", "ETCD_CORRUPT_CHECK_TIME": "30s"}, initial: true, every: 30 * time.Second},
		{env: map[string]string{"ETCD_FEATURE_GATES": "CompactHashCheck=true", "ETCD_COMPACT_HASH_CHECK_TIME": "2m", "ETCD_CORRUPT_CHECK_TIME": "0s"}, compact: true, hashEvery: 2 * time.Minute},
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
		if tc.hashEvery == 0 {
			tc.hashEvery = time.Minute
		}
		if f.cfg.CompactHashCheck != tc.compact || f.cfg.CompactHashCheckTime != tc.hashEvery {
			t.Errorf("%v %v: compaction hash check %v every %v; want %v every %v",
				tc.args, tc.env, f.cfg.CompactHashCheck, f.cfg.CompactHashCheckTime, tc.compact, tc.hashEvery)
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
