package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/synod-db/synod/server"
)

// etcdFeatureGates are the gates etcd 3.7's --feature-gates knows, with
// what each means for synod. Only InitialCorruptCheck and CompactHashCheck
// change anything; the others are accepted so that an etcd manifest starts, and logged as having
// no effect (with the reason).
var etcdFeatureGates = map[string]string{
	"AllAlpha":                     "turns on InitialCorruptCheck and CompactHashCheck, synod's alpha gates",
	"AllBeta":                      "synod has no beta gates",
	"CompactHashCheck":             "",
	"FastLeaseKeepAlive":           "keep-alives are always answered once the renewal is applied (docs/leases.md)",
	"InitialCorruptCheck":          "",
	"LeaseCheckpoint":              "remaining TTLs are always replicated (docs/leases.md)",
	"LeaseCheckpointPersist":       "remaining TTLs are always persisted (docs/leases.md)",
	"PriorityRequest":              "not implemented",
	"SetMemberLocalAddr":           "not implemented",
	"StopGRPCServiceOnDefrag":      "defragment never blocks requests (docs/maintenance.md)",
	"TxnModeWriteWithSharedBuffer": "not applicable to synod's storage",
}

// featureGates is the --feature-gates flag: comma-separated Gate=bool
// pairs, parsed and refused as etcd does.
type featureGates struct {
	set map[string]bool
}

func (g *featureGates) String() string {
	if g == nil || len(g.set) == 0 {
		return ""
	}
	var parts []string
	for k, v := range g.set {
		parts = append(parts, k+"="+strconv.FormatBool(v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Set parses one --feature-gates value (later flags add to earlier ones).
func (g *featureGates) Set(s string) error {
	if g.set == nil {
		g.set = map[string]bool{}
	}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return fmt.Errorf("missing bool value for %s", k)
		}
		if _, known := etcdFeatureGates[k]; !known {
			return fmt.Errorf("unrecognized feature gate: %s", k)
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("invalid value of %s=%s, err: %v", k, strings.TrimSpace(v), err)
		}
		g.set[k] = b
	}
	return nil
}

// apply sets what the gates turn on in c and returns a note for every gate
// that was set but has no effect in synod.
func (g *featureGates) apply(c *server.Config) []string {
	c.InitialCorruptCheck = g.alpha("InitialCorruptCheck")
	c.CompactHashCheck = g.alpha("CompactHashCheck")
	var notes []string
	for k, v := range g.set {
		if why := etcdFeatureGates[k]; why != "" && k != "AllAlpha" {
			notes = append(notes, fmt.Sprintf("feature gate %s=%t has no effect: %s", k, v, why))
		}
	}
	slices.Sort(notes)
	return notes
}

// alpha is the value of an alpha gate: as set, else AllAlpha's, else off.
func (g *featureGates) alpha(name string) bool {
	if v, ok := g.set[name]; ok {
		return v
	}
	return g.set["AllAlpha"]
}
