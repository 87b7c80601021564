package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.etcd.io/etcd/pkg/v3/flags"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/synod-db/synod/etcdlog"
)

// logFlags are etcd's logging flags (see package etcdlog).
type logFlags struct {
	logger, level, format string
	outputs               *flags.UniqueStringsValue
	rotate                bool
	rotationJSON          string
}

// defaultLogRotationConfig is etcd's --log-rotation-config-json default.
const defaultLogRotationConfig = `{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}`

func (l *logFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&l.logger, "logger", "zap", "Currently only supports 'zap' for structured logging.")
	l.outputs = flags.NewUniqueStringsValue("default")
	fs.Var(l.outputs, "log-outputs", "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets ('default' is stderr).")
	fs.StringVar(&l.level, "log-level", "info", "Configures log level. Only supports debug, info, warn, error, panic, or fatal.")
	fs.StringVar(&l.format, "log-format", "json", "Configures log format. Only supports json, console.")
	fs.BoolVar(&l.rotate, "enable-log-rotation", false, "Enable log rotation of a single log-outputs file target.")
	fs.StringVar(&l.rotationJSON, "log-rotation-config-json", defaultLogRotationConfig, "Configures log rotation if enabled with a JSON logger config.")
}

// check refuses what etcd refuses, in its words.
func (l *logFlags) check() error {
	switch l.logger {
	case "zap":
	case "capnslog":
		return fmt.Errorf("--logger=capnslog is removed in v3.5")
	default:
		return fmt.Errorf("unknown logger option %q", l.logger)
	}
	_, err := l.rotation()
	return err
}

// errRotationOutputs is etcd's refusal of rotation without exactly one file.
var errRotationOutputs = errors.New("--log-outputs requires a single file path when --log-rotate-config-json is defined")

// rotation is the rotation --enable-log-rotation asks for (nil when off),
// checked as etcd checks it: exactly one file among the outputs, and a
// well-formed --log-rotation-config-json (lumberjack's settings).
func (l *logFlags) rotation() (*lumberjack.Logger, error) {
	if !l.rotate {
		return nil, nil
	}
	outs := strings.Split(l.outputs.String(), ",")
	files := 0
	for _, o := range outs {
		if o != "default" && o != "stderr" && o != "stdout" {
			files++
		}
	}
	if (len(outs) == 1 && files == 0) || files > 1 {
		return nil, errRotationOutputs
	}
	var r lumberjack.Logger
	if err := json.Unmarshal([]byte(l.rotationJSON), &r); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			return nil, fmt.Errorf("improperly formatted log rotation config: %w", err)
		case errors.As(err, &typ):
			return nil, fmt.Errorf("invalid log rotation config: %w", err)
		}
		return nil, fmt.Errorf("fail to unmarshal log rotation config: %w", err)
	}
	return &r, nil
}

// options are the etcdlog options the flags stand for.
func (l *logFlags) options() etcdlog.Options {
	r, _ := l.rotation() // checked by check
	return etcdlog.Options{Level: l.level, Format: l.format, Outputs: strings.Split(l.outputs.String(), ","), Rotation: r}
}

// newLogger builds the member's logger; stderr stands for the "stderr" and
// "default" outputs when it is not the process's (tests).
func (l *logFlags) newLogger(stderr io.Writer) (*slog.Logger, func(), error) {
	return etcdlog.New(stderr, l.options())
}

// logStartupError logs err the way etcd reports a configuration it refuses,
// on standard error in etcd's JSON shape: a warn line "failed to verify
// flags" with the error, or, for a variable shadowed by a flag, etcd's
// fatal line naming the variable.
func logStartupError(stderr io.Writer, err error) {
	lg, closeLog, lerr := etcdlog.New(stderr, etcdlog.Options{})
	if lerr != nil {
		fmt.Fprintf(stderr, "synod serve: %v\n", err)
		return
	}
	defer closeLog()
	var conflict *envConflictError
	if errors.As(err, &conflict) {
		lg.Log(context.Background(), etcdlog.LevelFatal, err.Error(), "environment-variable", conflict.variable)
		return
	}
	lg.Warn("failed to verify flags", "error", err.Error())
}

// newLogger is the text logger of synod dev (and of tools): key=value
// lines at the given level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q (debug, info, warn, error)", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
