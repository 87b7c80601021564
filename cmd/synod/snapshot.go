package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/synod-db/synod/server"
)

const snapshotUsage = `Usage:
  synod snapshot restore FILE [flags]   create a new cluster member's data directory from FILE
                                        (written by 'etcdctl snapshot save')
`

// runSnapshot dispatches the snapshot subcommands.
func runSnapshot(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "restore" {
		fmt.Fprint(stderr, snapshotUsage)
		return 2
	}
	return runRestore(args[1:], stdout, stderr)
}

// restoreFlags are etcdutl's `snapshot restore` flags.
type restoreFlags struct {
	cfg        server.Config
	advertise  string
	opts       server.RestoreOptions
	dataDirSet bool
}

func newRestoreFlagSet(stderr io.Writer) (*flag.FlagSet, *restoreFlags) {
	f := &restoreFlags{cfg: server.NewConfig()}
	fs := flag.NewFlagSet("synod snapshot restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, snapshotUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	c := &f.cfg
	fs.StringVar(&c.Name, "name", c.Name, "Human-readable name for this member.")
	fs.StringVar(&c.DataDir, "data-dir", "", "Path to the data directory to create (default: NAME.synod); it must not exist.")
	fs.StringVar(&c.WALDir, "wal-dir", "", "Path to the directory for the raft log (default: in the data directory); serve the member with the same --wal-dir.")
	fs.StringVar(&c.InitialCluster, "initial-cluster", "", "Initial cluster configuration for the new cluster (name=peerURL,...). Defaults to this member alone.")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", c.InitialClusterToken, "Initial cluster token for the new cluster.")
	fs.StringVar(&f.advertise, "initial-advertise-peer-urls", server.DefaultPeerURL, "List of this member's peer URLs to advertise to the rest of the cluster.")
	fs.BoolVar(&f.opts.SkipHashCheck, "skip-hash-check", false, "Ignore the snapshot integrity hash (required if the file was copied from a data directory).")
	fs.Int64Var(&f.opts.BumpRevision, "bump-revision", 0, "How much to increase the latest revision after restore.")
	fs.BoolVar(&f.opts.MarkCompacted, "mark-compacted", false, "Mark the latest revision after restore as the point of scheduled compaction (required if --bump-revision > 0, disallowed otherwise).")
	return fs, f
}

// parseRestore parses FILE and the flags (in any order).
func parseRestore(args []string, stderr io.Writer) (string, *restoreFlags, error) {
	fs, f := newRestoreFlagSet(stderr)
	var file string
	for {
		if err := fs.Parse(args); err != nil {
			return "", nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		if file != "" {
			return "", nil, fmt.Errorf("one snapshot file expected, got %q and %q", file, fs.Arg(0))
		}
		file, args = fs.Arg(0), fs.Args()[1:]
	}
	if file == "" {
		return "", nil, errors.New("snapshot path is required")
	}
	if f.cfg.DataDir == "" {
		f.cfg.DataDir = f.cfg.Name + ".synod"
	}
	f.cfg.InitialAdvertisePeerURLs = splitURLs(f.advertise)
	f.cfg.ListenPeerURLs = f.cfg.InitialAdvertisePeerURLs
	return file, f, nil
}

func runRestore(args []string, stdout, stderr io.Writer) int {
	file, f, err := parseRestore(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "synod snapshot restore: %v\n", err)
		return 2
	}
	res, err := server.RestoreSnapshot(f.cfg, file, f.opts)
	if err != nil {
		fmt.Fprintf(stderr, "synod snapshot restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored snapshot %s into %s: revision %d, compacted at %d; new cluster %x of %d member(s), this member %x\n",
		file, f.cfg.DataDir, res.Rev, res.CompactRev, res.ClusterID, res.Members, res.MemberID)
	return 0
}
