package etcdlog

import (
	"context"
	"log/slog"
	"runtime"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// handler is a slog.Handler that writes each record through a zap core.
// Groups prefix their attributes' keys ("group.key"), as dotted keys are
// how zap's JSON reads nested fields.
type handler struct {
	core   zapcore.Core
	level  slog.Level
	prefix string // the open groups, "a.b."
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	ent := zapcore.Entry{Level: zapLevel(r.Level), Time: r.Time, Message: r.Message}
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		ent.Caller = zapcore.NewEntryCaller(f.PC, f.File, f.Line, f.File != "")
	}
	if ce := h.core.Check(ent, nil); ce != nil {
		fields := make([]zap.Field, 0, r.NumAttrs())
		r.Attrs(func(a slog.Attr) bool {
			fields = appendAttr(fields, h.prefix, a)
			return true
		})
		// Write, not ce.Write: zap would exit or panic at fatal and panic
		// level, and synod decides that itself.
		return h.core.Write(ent, fields)
	}
	return nil
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	fields := make([]zap.Field, 0, len(as))
	for _, a := range as {
		fields = appendAttr(fields, h.prefix, a)
	}
	return &handler{core: h.core.With(fields), level: h.level, prefix: h.prefix}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{core: h.core, level: h.level, prefix: h.prefix + name + "."}
}

// appendAttr appends a as zap fields (a group's attributes one by one).
func appendAttr(fields []zap.Field, prefix string, a slog.Attr) []zap.Field {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() != slog.KindGroup {
		return fields
	}
	key := prefix + a.Key
	switch v.Kind() {
	case slog.KindGroup:
		p := prefix
		if a.Key != "" {
			p = key + "."
		}
		for _, g := range v.Group() {
			fields = appendAttr(fields, p, g)
		}
		return fields
	case slog.KindString:
		return append(fields, zap.String(key, v.String()))
	case slog.KindInt64:
		return append(fields, zap.Int64(key, v.Int64()))
	case slog.KindUint64:
		return append(fields, zap.Uint64(key, v.Uint64()))
	case slog.KindFloat64:
		return append(fields, zap.Float64(key, v.Float64()))
	case slog.KindBool:
		return append(fields, zap.Bool(key, v.Bool()))
	case slog.KindDuration:
		return append(fields, zap.Duration(key, v.Duration()))
	case slog.KindTime:
		return append(fields, zap.String(key, v.Time().UTC().Format(time.RFC3339Nano)))
	}
	if err, ok := v.Any().(error); ok {
		return append(fields, zap.NamedError(key, err))
	}
	return append(fields, zap.Any(key, v.Any()))
}
