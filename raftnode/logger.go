package raftnode

import (
	"fmt"
	"log/slog"
	"os"
)

// raftLogger adapts slog to raft.Logger. raft's Panic and Fatal mean a broken
// invariant: they log and then panic or exit as raft expects. The one panic
// that means the log lost entries it acknowledged (raft's commitTo: the
// leader commits past this member's last index) panics with
// ErrLogBehindState, built by logBehind, which the loop turns into its
// fatal error (Node.recoverCorruption).
type raftLogger struct {
	l         *slog.Logger
	logBehind func(what string, end uint64) error
}

// raftCommitPastLog is the format of raft's panic (go.etcd.io/raft/v3
// log.go, commitTo) when it is told to commit past the end of its log.
const raftCommitPastLog = "tocommit(%d) is out of range [lastIndex(%d)]. Was the raft log corrupted, truncated, or lost?"

func (r raftLogger) Debug(v ...any)              { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(f string, v ...any)   { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Error(v ...any)              { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(f string, v ...any)   { r.l.Error(fmt.Sprintf(f, v...)) }
func (r raftLogger) Info(v ...any)               { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(f string, v ...any)    { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Warning(v ...any)            { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(f string, v ...any) { r.l.Warn(fmt.Sprintf(f, v...)) }
func (r raftLogger) Fatal(v ...any)              { r.l.Error(fmt.Sprint(v...)); os.Exit(1) }
func (r raftLogger) Fatalf(f string, v ...any)   { r.l.Error(fmt.Sprintf(f, v...)); os.Exit(1) }
func (r raftLogger) Panic(v ...any)              { s := fmt.Sprint(v...); r.l.Error(s); panic(s) }
func (r raftLogger) Panicf(f string, v ...any) {
	s := fmt.Sprintf(f, v...)
	r.l.Error(s)
	if f == raftCommitPastLog && len(v) == 2 && r.logBehind != nil {
		commit, _ := v[0].(uint64)
		last, _ := v[1].(uint64)
		panic(r.logBehind(fmt.Sprintf("the leader commits entries up to index %d, which this member acknowledged", commit), last))
	}
	panic(s)
}
