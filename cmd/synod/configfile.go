package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/synod-db/synod/etcdyaml"
)

// fromConfigFile replaces every value with the configuration file's, on
// top of the defaults: as etcd, a configuration file makes synod ignore the
// other flags and the environment (and says so in its log).
func (f *serveFlags) fromConfigFile(stderr io.Writer) error {
	path := f.configFile
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	settings, err := etcdyaml.Parse(b)
	if err != nil {
		return err
	}
	fs, g := newServeFlagSet(stderr)
	for _, s := range settings {
		if fs.Lookup(s.Flag) == nil {
			g.lines = append(g.lines, logLine{level: slog.LevelWarn, msg: "configuration file key not supported by this build; ignored", args: []any{"key", s.Flag}})
			continue
		}
		if err := fs.Set(s.Flag, s.Value); err != nil {
			return fmt.Errorf("configuration file %s: invalid value %q for %s: %w", path, s.Value, s.Flag, err)
		}
		g.set[s.Flag] = true
	}
	g.configFile = path
	g.lines = append(g.lines, logLine{level: slog.LevelInfo, msg: "loaded server configuration, other configuration command line flags and environment variables will be ignored if provided", args: []any{"path", path}})
	*f = *g
	return f.finish()
}
