package main

import (
	"flag"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/pkg/v3/flags"
)

// inertFlag is an etcd flag synod accepts, checks like etcd and ignores,
// with the reason (docs/configuration.md lists them).
type inertFlag struct {
	name, usage, why string
	value            flag.Value
}

// inertFlags are etcd's flags that have no meaning for synod's storage or
// transport, plus the long-removed flags etcd itself still accepts and
// ignores.
type inertFlags struct {
	list []inertFlag
}

// legacyIgnored are flags etcd accepts and ignores ("flag is no longer
// supported - ignoring"); so does synod.
var legacyIgnored = []string{"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval", "config", "force",
	"max-result-buffer", "max-retry-attempts", "peer-heartbeat-interval", "peer-election-timeout", "retry-interval",
	"snapshot", "v", "vv"}

func (in *inertFlags) bind(fs *flag.FlagSet) {
	d := func(v time.Duration) flag.Value { return (*durationValue)(&v) }
	b := func(v bool) flag.Value { return (*boolValue)(&v) }
	u := func(v uint64) flag.Value { return (*uintValue)(&v) }
	const bolt = "Pebble, not bbolt, stores synod's data"
	in.list = []inertFlag{
		{"max-snapshots", "Maximum number of snapshot files to retain (0 is unlimited). Deprecated in etcd v3.6.", "synod keeps only the newest raft snapshot", u(5)},
		{"max-wals", "Maximum number of wal files to retain (0 is unlimited).", "Pebble deletes and recycles its WAL files itself once they are flushed", u(5)},
		{"memory-mlock", "Enable to enforce etcd pages (in particular bbolt) to stay in RAM.", bolt, b(false)},
		{"backend-bbolt-freelist-type", "BackendFreelistType specifies the type of freelist that boltdb backend uses (array and map are supported types).", bolt, newStringValue("map")},
		{"backend-batch-interval", "BackendBatchInterval is the maximum time before commit the backend transaction.", "synod commits every applied batch of raft entries at once", d(0)},
		{"backend-batch-limit", "BackendBatchLimit is the maximum operations before commit the backend transaction.", "synod commits every applied batch of raft entries at once", u(0)},
		{"initial-election-tick-advance", "Whether to fast-forward initial election ticks on boot for faster election.", "synod's raft waits a full election timeout at boot", b(true)},
		{"pre-vote", "Enable the raft Pre-Vote algorithm.", "synod always runs raft with Pre-Vote and CheckQuorum", b(true)},
		{"metrics", "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics.", "synod does not export the gRPC handling-time histograms (grpc_server_handling_seconds) that 'extensive' adds in etcd", flags.NewSelectiveStringValue("basic", "extensive")},
		{"compaction-sleep-interval", "Sets the sleep interval between each compaction batch.", "synod's compaction runs in the background and does not hold writes up between batches", d(10 * time.Millisecond)},
		{"bootstrap-defrag-threshold-megabytes", "Enable the defrag during bootstrap on condition that it will free at least the provided threshold of disk space.", "Pebble reclaims space by compaction, there is no file to defragment at start", u(0)},
		{"downgrade-check-time", "Duration of time between two downgrade status checks.", "synod has no downgrade procedure", d(5 * time.Second)},
		{"v2-deprecation", "Phase of v2store deprecation. Deprecated; the default value is enforced, ignoring user input.", "synod has no v2 store",
			flags.NewSelectiveStringsValue("write-only", "write-only-drop-data", "gone", "write-only-skip-check")},
	}
	for _, f := range in.list {
		fs.Var(f.value, f.name, f.usage+" (no effect in synod: "+f.why+")")
	}
	for _, name := range legacyIgnored {
		fs.Var(&flags.IgnoredFlag{Name: name}, name, "")
	}
}

// deprecated are etcd's warnings for deprecated flags that are set.
var deprecated = map[string]string{
	"max-snapshots":  "--max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8.",
	"v2-deprecation": "--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input.",
}

// notes returns one line for each inert flag that was set.
func (in *inertFlags) notes(set map[string]bool) []string {
	var out []string
	for _, f := range in.list {
		if set[f.name] {
			out = append(out, fmt.Sprintf("flag --%s=%s has no effect in synod: %s", f.name, f.value.String(), f.why))
		}
		if msg, ok := deprecated[f.name]; ok && set[f.name] {
			out = append(out, msg)
		}
	}
	for _, name := range legacyIgnored {
		if set[name] {
			out = append(out, "flag is no longer supported - ignoring: --"+name)
		}
	}
	slices.Sort(out)
	return out
}
