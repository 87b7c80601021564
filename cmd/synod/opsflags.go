package main

import (
	"errors"
	"flag"

	"github.com/synod-db/synod/compactor"
	"github.com/synod-db/synod/server"
)

// bindOperationFlags binds etcd's auto compaction flags and
// --force-new-cluster to c (docs/maintenance.md, docs/membership.md).
func bindOperationFlags(fs *flag.FlagSet, c *server.Config) {
	c.AutoCompactionMode, c.AutoCompactionRetention = compactor.ModePeriodic, "0"
	fs.Func("auto-compaction-mode", "interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention. (default periodic)",
		func(s string) error {
			if s == "" {
				return errors.New("undefined auto-compaction-mode")
			}
			c.AutoCompactionMode = s // checked with the retention by server.Config.Validate
			return nil
		})
	fs.StringVar(&c.AutoCompactionRetention, "auto-compaction-retention", c.AutoCompactionRetention, "Auto compaction retention for mvcc key value store. 0 means disable auto compaction.")
	fs.BoolVar(&c.ForceNewCluster, "force-new-cluster", false, "Force to create a new one member cluster from a restarted member's data (remove the flag once it runs).")
}
