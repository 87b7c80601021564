package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/synod-db/synod/check"
)

// runCheck wires `synod check` flags to check.Run. Exit codes: 0 OK,
// 1 FAIL (an anomaly), 2 bad usage or setup failure, 3 UNKNOWN (the
// checker could not decide, e.g. porcupine timed out).
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("synod check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := check.Config{Progress: stderr}
	fs.IntVar(&cfg.Nodes, "nodes", 3, "Number of members.")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "How long workloads and faults run (then everything is healed and checked).")
	fs.StringVar(&cfg.Nemeses, "nemesis", "all", "Faults, comma-separated: all, none, or any of "+strings.Join(check.NemesisList(), ", ")+".")
	fs.StringVar(&cfg.Workloads, "workload", "all", "Workloads, comma-separated: all, or any of "+strings.Join(check.WorkloadList(), ", ")+".")
	fs.Int64Var(&cfg.Seed, "seed", 0, "Seed of every random choice; 0 picks one from the clock (printed, for replay).")
	fs.BoolVar(&cfg.KeepData, "keep-data", false, "Keep the members' data directories and logs (always kept when the verdict is not OK).")
	fs.StringVar(&cfg.Dir, "data-dir", "", "Directory in which the run makes its own synod-check-* directory for the members (default: the system's temporary directory).")
	fs.StringVar(&cfg.ReportPath, "report", "synod-check.html", "Path of the HTML report; empty for none.")
	fs.StringVar(&cfg.Bin, "synod-bin", "", "synod executable to check (default: this executable).")
	fs.IntVar(&cfg.Workload.ClientsPerMember, "clients", 2, "Concurrent clients per member and workload.")
	quiet := fs.Bool("quiet", false, "Print only the verdict line.")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: synod check [flags]\n\nStarts a cluster of this synod build on loopback, with a fault-injecting proxy on every peer link,\nruns workloads while injecting faults, heals, and checks the history. Exit status: 0 OK, 1 FAIL, 2 usage/setup error, 3 UNKNOWN.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nNemeses:\n")
		for _, n := range check.NemesisList() {
			fmt.Fprintf(stderr, "  %-18s %s\n", n, check.NemesisNames()[n])
		}
		fmt.Fprint(stderr, "\nWorkloads:\n")
		for _, w := range check.WorkloadList() {
			fmt.Fprintf(stderr, "  %-18s %s\n", w, check.WorkloadNames()[w])
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "synod check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "synod check: %v (use --synod-bin)\n", err)
			return 2
		}
		cfg.Bin = exe
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()
	}
	if *quiet {
		cfg.Progress = io.Discard
	}
	fmt.Fprintf(cfg.Progress, "synod check: seed %d, %d members of %s\n", cfg.Seed, cfg.Nodes, cfg.Bin)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := check.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "synod check: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, rep.Line())
	for _, res := range rep.Results {
		for _, a := range res.Anomalies {
			fmt.Fprintf(stdout, "  %s: %s\n", res.Workload, a)
		}
	}
	if cfg.ReportPath != "" {
		fmt.Fprintf(stdout, "  report: %s\n", cfg.ReportPath)
	}
	if rep.DataKept {
		fmt.Fprintf(stdout, "  member data and logs: %s\n", rep.Dir)
	}
	switch rep.Verdict {
	case check.VerdictOK:
		return 0
	case check.VerdictFail:
		return 1
	default:
		return 3
	}
}
