// Command synod is a strongly consistent, replicated key-value store that
// speaks the etcd v3 API.
//
//	synod serve [flags]   run one member (etcd's flags and meanings)
//	synod dev [flags]     run a local 3-member cluster for development
//	synod snapshot restore FILE [flags]   a new cluster's data directory from an etcdctl snapshot
//	synod check [flags]   verify a cluster of this build under faults (Jepsen-style)
//	synod version         print the version
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `synod: a replicated key-value store that speaks the etcd v3 API

Usage:
  synod serve [flags]   run one member; flags have etcd's names and meanings
  synod dev [flags]     run a local 3-member cluster (clients on 2379, 22379, 32379)
  synod snapshot restore FILE [flags]
                        create a new cluster member's data directory from a file
                        written by 'etcdctl snapshot save' (etcdutl's flags)
  synod check [flags]   start a cluster of this build, inject faults, check linearizability
  synod version         print the version

Run 'synod <command> --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "dev":
		return runDev(args[1:], stdout, stderr)
	case "snapshot":
		return runSnapshot(args[1:], stdout, stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "synod version %s (etcd API %s)\n", version, apiVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "synod: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
