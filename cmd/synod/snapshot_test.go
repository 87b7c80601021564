package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRestoreFlags(t *testing.T) {
	var stderr bytes.Buffer
	file, f, err := parseRestore([]string{"--name=r1", "backup.db", "--initial-cluster-token=tok",
		"--initial-advertise-peer-urls=http://10.0.0.1:2380", "--bump-revision=100", "--mark-compacted", "--skip-hash-check"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if file != "backup.db" || f.cfg.Name != "r1" || f.cfg.DataDir != "r1.synod" || f.cfg.InitialClusterToken != "tok" ||
		f.cfg.InitialAdvertisePeerURLs[0] != "http://10.0.0.1:2380" || f.opts.BumpRevision != 100 || !f.opts.MarkCompacted ||
		!f.opts.SkipHashCheck {
		t.Errorf("parsed %q %+v %+v", file, f.cfg, f.opts)
	}
	for name, args := range map[string][]string{
		"no file":    {"--name=x"},
		"two files":  {"a.db", "b.db"},
		"bad flag":   {"a.db", "--nope"},
		"bad number": {"a.db", "--bump-revision=x"},
	} {
		if _, _, err := parseRestore(args, &stderr); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestRestoreCommandErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte{7}, 544), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"usage", []string{"snapshot"}, 2, "synod snapshot restore FILE"},
		{"missing file", []string{"snapshot", "restore", filepath.Join(dir, "none.db"), "--data-dir=" + filepath.Join(dir, "a")}, 1, "no such file"},
		{"corrupt file", []string{"snapshot", "restore", garbage, "--data-dir=" + filepath.Join(dir, "b")}, 1, "integrity check failed"},
		{"bump without mark", []string{"snapshot", "restore", garbage, "--data-dir=" + filepath.Join(dir, "c"), "--bump-revision=5"}, 1, "--mark-compacted"},
		{"data dir exists", []string{"snapshot", "restore", garbage, "--data-dir=" + dir}, 1, "data directory exists"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.msg) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", c.name, code, stderr.String(), c.code, c.msg)
		}
	}
}
