package etcdlog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/synod-db/synod/etcdlog"
)

// etcd's line: {"level":"info","ts":"2026-12-06T19:55:05.871444Z","caller":"etcdmain/etcd.go:63","msg":"...",...}
var etcdTS = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func TestJSONLinesHaveEtcdsShape(t *testing.T) {
	var buf bytes.Buffer
	lg, closeLog, err := etcdlog.New(&buf, etcdlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lg.Debug("hidden at the default level")
	lg.With("member", "m1").WithGroup("req").Warn("slow request", "took", 1500*time.Millisecond, "n", 3, "err", errors.New("boom"), "ok", true)
	closeLog()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line (debug is below info), got %q", buf.String())
	}
	if !strings.HasPrefix(lines[0], `{"level":"warn","ts":"`) {
		t.Errorf("fields out of etcd's order: %s", lines[0])
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"level": "warn", "msg": "slow request", "member": "m1", "req.took": "1.5s", "req.n": float64(3), "req.err": "boom", "req.ok": true}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, rec[k], v, lines[0])
		}
	}
	if ts, _ := rec["ts"].(string); !etcdTS.MatchString(ts) {
		t.Errorf("ts %q is not etcd's format", ts)
	}
	if c, _ := rec["caller"].(string); !regexp.MustCompile(`^etcdlog/logger_test\.go:\d+$`).MatchString(c) {
		t.Errorf("caller %q, want etcd's short form pointing at this test", c)
	}
}

func TestLevelsFormatsAndOutputs(t *testing.T) {
	var buf bytes.Buffer
	path := filepath.Join(t.TempDir(), "member.log")
	lg, closeLog, err := etcdlog.New(&buf, etcdlog.Options{Level: "debug", Format: "console", Outputs: []string{"default", path, "stderr"}})
	if err != nil {
		t.Fatal(err)
	}
	lg.Debug("to both", "k", "v")
	closeLog()
	file, _ := os.ReadFile(path)
	for name, out := range map[string]string{"stderr": buf.String(), "file": string(file)} {
		if strings.Count(out, "to both") != 1 || !strings.Contains(out, "\tdebug\t") || !strings.Contains(out, `{"k": "v"}`) {
			t.Errorf("%s: want one console line at debug, got %q", name, out)
		}
	}
	for _, o := range []etcdlog.Options{{Level: "loud"}, {Format: "xml"}, {Outputs: []string{"/nonexistent/dir/x.log"}}} {
		if _, _, err := etcdlog.New(&buf, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	_, _, err = etcdlog.New(&buf, etcdlog.Options{Format: "xml"})
	if err == nil || err.Error() != "unknown log format: xml, supported values json, console" {
		t.Errorf("etcd's message for a bad format, got %v", err)
	}
}

// --enable-log-rotation: the file output rotates at its size limit and
// keeps the configured backups (lumberjack, as in etcd).
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "member.log")
	var buf bytes.Buffer
	lg, closeLog, err := etcdlog.New(&buf, etcdlog.Options{Outputs: []string{path}, Rotation: &lumberjack.Logger{MaxSize: 1, MaxBackups: 1}})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1024)
	for i := 0; i < 3*1024; i++ { // 3 MiB through a 1 MiB limit
		lg.Info("line", "pad", pad)
	}
	closeLog()
	// lumberjack removes old backups in a goroutine of its own after each
	// rotation: wait (bounded) for it to have done so.
	var files []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		files, _ = filepath.Glob(filepath.Join(dir, "member-*.log"))
		if len(files) == 1 || time.Now().After(deadline) {
			break
		}
	}
	if len(files) != 1 {
		t.Fatalf("want one rotated backup (MaxBackups 1), got %v", files)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() > 1<<20 {
		t.Fatalf("current file %v, %v: want at most 1 MiB", fi, err)
	}
	if buf.Len() != 0 {
		t.Fatal("rotation wrote to stderr")
	}
}
