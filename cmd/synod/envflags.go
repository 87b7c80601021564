package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// envPrefixes are read in this order: synod's own variables, then etcd's,
// so that existing manifests carry over.
var envPrefixes = []string{"SYNOD_", "ETCD_"}

// envKey is a flag's variable name without the prefix: data-dir -> DATA_DIR.
func envKey(flagName string) string {
	return strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// lookupEnv returns SYNOD_<key> or else ETCD_<key> ("" when neither is set).
func lookupEnv(key string) string {
	for _, p := range envPrefixes {
		if v := os.Getenv(p + key); v != "" {
			return v
		}
	}
	return ""
}

// fromEnv sets every flag not given on the command line from its variable,
// as etcd's flags.SetFlagsFromEnv does: empty variables are unset ones, a
// bad value is refused naming the variable, and a variable for a flag that
// is also on the command line is an error (etcd refuses to start rather
// than guess which was meant). Variables with the prefix that name no flag
// are noted, as etcd warns about them.
func (f *serveFlags) fromEnv(fs *flag.FlagSet) error {
	used := map[string]bool{}
	var err error
	fs.VisitAll(func(fl *flag.Flag) {
		onCommandLine, fromEnv := f.set[fl.Name], false
		for _, p := range envPrefixes {
			name := p + envKey(fl.Name)
			v := os.Getenv(name)
			if v == "" || err != nil {
				continue
			}
			used[name] = true
			switch {
			case onCommandLine:
				err = &envConflictError{variable: name}
			case fromEnv: // SYNOD_ already set it
			default:
				if serr := fs.Set(fl.Name, v); serr != nil {
					err = fmt.Errorf("invalid value %q for %s: %w", v, name, serr)
				}
				f.set[fl.Name], fromEnv = true, true
				f.lines = append(f.lines, logLine{level: slog.LevelInfo, msg: "recognized and used environment variable",
					args: []any{"variable-name", name, "variable-value", v}})
			}
		}
	})
	if err != nil {
		return err
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !used[name] && name != "ETCD_CONFIG_FILE" && name != "SYNOD_CONFIG_FILE" &&
			(strings.HasPrefix(name, "ETCD_") || strings.HasPrefix(name, "SYNOD_")) && !envNotFlag[name] {
			f.lines = append(f.lines, logLine{level: slog.LevelWarn, msg: "unrecognized environment variable", args: []any{"environment-variable", kv}})
		}
	}
	return nil
}

// envNotFlag are variables synod or its tools read that are not flags.
var envNotFlag = map[string]bool{timerSlackApplied: true, testDNSServerEnv: true, "SYNOD_BIN": true, "SYNOD_ETCD_BIN": true, "SYNOD_E2E_ACTUAL_DIR": true, "ETCD_UNSUPPORTED_ARCH": true}

// envConflictError is a variable set for a flag also on the command line:
// etcd exits with a fatal log line (its text, and the variable's name).
type envConflictError struct{ variable string }

func (e *envConflictError) Error() string {
	return "conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag))"
}
