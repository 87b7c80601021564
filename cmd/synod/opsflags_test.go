package main

import (
	"strings"
	"testing"

	"github.com/synod-db/synod/compactor"
)

// TestOperationFlags: the auto compaction flags and --force-new-cluster,
// their defaults (etcd's: periodic, 0 = off), the environment, and etcd's
// errors for a bad mode or retention.
func TestOperationFlags(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AutoCompactionMode != compactor.ModePeriodic || c.AutoCompactionRetention != "0" || c.ForceNewCluster {
		t.Fatalf("defaults: %+v", c.Operations)
	}
	c, err = parseServe(t, []string{"--auto-compaction-retention=1000", "--force-new-cluster"},
		map[string]string{"ETCD_AUTO_COMPACTION_MODE": "revision"})
	if err != nil {
		t.Fatal(err)
	}
	if c.AutoCompactionMode != compactor.ModeRevision || c.AutoCompactionRetention != "1000" || !c.ForceNewCluster {
		t.Fatalf("parsed: %+v", c.Operations)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--auto-compaction-mode=foo"}, `unknown auto-compaction-mode "foo"`},
		{[]string{"--auto-compaction-retention=abc"}, `error parsing CompactionRetention: time: invalid duration "abc"`},
		{[]string{"--auto-compaction-retention=-1"}, `error parsing CompactionRetention: time: missing unit in duration "-1"`},
		{[]string{"--auto-compaction-mode=revision", "--auto-compaction-retention=-5m"}, `must not be negative`},
	} {
		c, err := parseServe(t, tc.args, nil)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.err)
		}
	}
	if _, err := parseServe(t, []string{"--auto-compaction-mode="}, nil); err == nil || !strings.Contains(err.Error(), "undefined auto-compaction-mode") {
		t.Errorf("an empty mode: error %v, want etcd's 'undefined auto-compaction-mode'", err)
	}
}
