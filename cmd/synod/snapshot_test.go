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
		"--initial-advertise-peer-urls=http://10.0.0.1:2380", "--bump-revision=100", "--mark-compacted", "--skip-hash-check",
		"--wal-dir=/fast/wal"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if file != "backup.db" || f.cfg.Name != "r1" || f.cfg.DataDir != "r1.synod" || f.cfg.InitialClusterToken != "tok" ||
		f.cfg.InitialAdvertisePeerURLs[0] != "http://10.0.0.1:2380" || f.opts.BumpRevision != 100 || !f.opts.MarkCompacted ||
		!f.opts.SkipHashCheck || f.cfg.WALDir != "/fast/wal" {
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

// TestRestoreEtcdFile: the command restores a snapshot saved from a real
// etcd 3.7.3 (etcdsnap/testdata) and says what it restored; a copy without
// its sha256 trailer is refused in etcdutl's words unless the check is
// skipped.
func TestRestoreEtcdFile(t *testing.T) {
	const file = "../../etcdsnap/testdata/etcd-3.7.3.db"
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"snapshot", "restore", file, "--name=m1", "--data-dir=" + filepath.Join(dir, "m1")}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "revision 14, compacted at 5; new cluster") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	noHash := filepath.Join(dir, "db")
	if err := os.WriteFile(noHash, data[:len(data)-32], 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run([]string{"snapshot", "restore", noHash, "--data-dir=" + filepath.Join(dir, "m2")}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "snapshot missing hash but --skip-hash-check=false") {
		t.Errorf("without a trailer: exit %d, stderr %q", code, stderr.String())
	}
	if code := run([]string{"snapshot", "restore", noHash, "--skip-hash-check", "--data-dir=" + filepath.Join(dir, "m3")}, &stdout, &stderr); code != 0 {
		t.Errorf("without a trailer, check skipped: exit %d, stderr %q", code, stderr.String())
	}
}
