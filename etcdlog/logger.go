package etcdlog

import (
	"fmt"
	"io"
	"log/slog"
	"slices"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Options are etcd's logging flags.
type Options struct {
	Level   string   // --log-level: debug, info, warn, error, panic or fatal ("" means info)
	Format  string   // --log-format: json or console ("" means json)
	Outputs []string // --log-outputs: default, stderr, stdout or file paths (none means default)
	// Rotation, when set, rotates the one file output (--enable-log-rotation
	// with --log-rotation-config-json); Filename is taken from the output.
	Rotation *lumberjack.Logger
}

// OptionsError is a refused option, with etcd's message.
type OptionsError struct{ Msg string }

// Error is etcd's message.
func (e *OptionsError) Error() string { return e.Msg }

// Levels beyond slog's: records at these levels are what etcd logs at
// panic and fatal level (synod never panics or exits through its logger).
const (
	LevelPanic = slog.LevelError + 4
	LevelFatal = slog.LevelError + 8
)

// New returns a logger writing to o's outputs in etcd's format, and a
// function that flushes and closes them. "default" and "stderr" are w (the
// process's standard error in synod serve), as for etcd outside systemd.
func New(w io.Writer, o Options) (*slog.Logger, func(), error) {
	level, err := ParseLevel(o.Level)
	if err != nil {
		return nil, nil, err
	}
	enc, err := encoder(o.Format)
	if err != nil {
		return nil, nil, err
	}
	sinks := []zapcore.WriteSyncer{}
	var files []string
	for _, out := range outputs(o.Outputs) {
		switch {
		case out == "stderr":
			sinks = append(sinks, zapcore.AddSync(w))
		case out == "/dev/null":
		case o.Rotation != nil && out != "stdout":
			r := o.Rotation
			sinks = append(sinks, zapcore.AddSync(&lumberjack.Logger{Filename: out, MaxSize: r.MaxSize, MaxAge: r.MaxAge,
				MaxBackups: r.MaxBackups, LocalTime: r.LocalTime, Compress: r.Compress}))
		default:
			files = append(files, out)
		}
	}
	closeFiles := func() {}
	if len(files) > 0 {
		ws, closeAll, err := zap.Open(files...)
		if err != nil {
			return nil, nil, err
		}
		sinks, closeFiles = append(sinks, ws), closeAll
	}
	core := zapcore.NewCore(enc, zapcore.NewMultiWriteSyncer(sinks...), zap.NewAtomicLevelAt(zapLevel(level)))
	return slog.New(&handler{core: core, level: level}), func() { _ = core.Sync(); closeFiles() }, nil
}

// ParseLevel parses --log-level (etcd's names; "" is info).
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	case "panic", "dpanic":
		return LevelPanic, nil
	case "fatal":
		return LevelFatal, nil
	}
	return 0, &OptionsError{fmt.Sprintf("unrecognized level: %q", s)}
}

// encoder is --log-format's encoder with etcd's settings, or etcd's
// refusal.
func encoder(format string) (zapcore.Encoder, error) {
	cfg := logutil.DefaultZapLoggerConfig.EncoderConfig
	switch format {
	case "", logutil.JSONLogFormat:
		return zapcore.NewJSONEncoder(cfg), nil
	case logutil.ConsoleLogFormat:
		return zapcore.NewConsoleEncoder(cfg), nil
	}
	return nil, &OptionsError{fmt.Sprintf("unknown log format: %s, supported values json, console", format)}
}

// outputs maps etcd's --log-outputs names to sinks ("default" is stderr),
// merged as etcd merges them: sorted, without repeats, and only /dev/null
// when it is one of them.
func outputs(in []string) []string {
	out := slices.Clone(in)
	for i, o := range out {
		if o == "default" || o == "" {
			out[i] = "stderr"
		}
	}
	if len(out) == 0 {
		out = []string{"stderr"}
	}
	cfg := logutil.MergeOutputPaths(zap.Config{OutputPaths: out})
	return cfg.OutputPaths
}

// zapLevel maps a slog level to zap's.
func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= LevelFatal:
		return zapcore.FatalLevel
	case l >= LevelPanic:
		return zapcore.PanicLevel
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	case l >= slog.LevelInfo:
		return zapcore.InfoLevel
	}
	return zapcore.DebugLevel
}
