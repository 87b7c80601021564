package e2e

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// What testdata/pebble1/datadir.tar.gz holds, as the release that wrote it
// (f62ec69, on Pebble v1.1.5, through testdata/pebble1/make.sh) served it.
const (
	pebble1Revision  = 34
	pebble1MemberID  = 1032693920738773425
	pebble1Lease     = 0x09b1a24e21406c21
	pebble1Compacted = 20
	msgPebbleUpgrade = "upgraded the database from Pebble v1's format"
)

var pebble1Keys = map[string]string{
	"after-restart": "yes", "k0": "last", "k1": "v26", "k2": "v27", "k3": "v28", "k4": "v29",
	"leased": "on 09b1a24e21406c21",
}

// TestPebbleV1DataDir: a data directory written by the last release built
// on Pebble v1 (its default format, which Pebble v2 refuses; a v1 sstable
// from a clean stop, then a v1 WAL tail from a kill -9) opens with this
// build, which upgrades it once and says so: the keys, the revision, the
// compaction, the lease and the member are all there, it takes a write,
// and it starts again (without upgrading again) with the write kept.
func TestPebbleV1DataDir(t *testing.T) {
	c := startCluster(t, "synod", 1)
	c.StopMember(0)
	m := c.Members[0]
	if err := os.RemoveAll(m.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := untarGz(filepath.Join("testdata", "pebble1", "datadir.tar.gz"), filepath.Dir(m.DataDir)); err != nil {
		t.Fatal(err)
	}
	c.Restart(0)
	if n := strings.Count(m.LogText(), msgPebbleUpgrade); n != 1 {
		t.Fatalf("%d log lines say %q, want 1", n, msgPebbleUpgrade)
	}
	cli := m.client(t)
	checkPebble1Data(t, cli)
	put, err := cli.Put(context.Background(), "written-by-v2", "1")
	if err != nil || put.Header.Revision != pebble1Revision+1 {
		t.Fatalf("put after the upgrade: %v, %v; want revision %d", put, err, pebble1Revision+1)
	}
	c.StopMember(0)
	c.Restart(0)
	if n := strings.Count(m.LogText(), msgPebbleUpgrade); n != 1 {
		t.Fatalf("after a second start, %d log lines say %q, want still 1", n, msgPebbleUpgrade)
	}
	got, err := cli.Get(context.Background(), "written-by-v2")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "1" || got.Header.Revision != pebble1Revision+1 {
		t.Fatalf("after a restart: %v, %v; want the write at revision %d", got, err, pebble1Revision+1)
	}
}

// checkPebble1Data checks everything the fixture's release served.
func checkPebble1Data(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if fmt.Sprint(got) != fmt.Sprint(pebble1Keys) || resp.Header.Revision != pebble1Revision {
		t.Fatalf("keys %v at revision %d; want %v at %d", got, resp.Header.Revision, pebble1Keys, pebble1Revision)
	}
	if _, err := cli.Get(ctx, "k0", clientv3.WithRev(pebble1Compacted-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("read below the compaction: %v, want %v", err, rpctypes.ErrCompacted)
	}
	ttl, err := cli.TimeToLive(ctx, pebble1Lease, clientv3.WithAttachedKeys())
	if err != nil || ttl.GrantedTTL != 1000000 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "leased" {
		t.Fatalf("lease %x: %+v, %v; want TTL 1000000 with key leased", pebble1Lease, ttl, err)
	}
	ms, err := cli.MemberList(ctx)
	if err != nil || len(ms.Members) != 1 || ms.Members[0].ID != pebble1MemberID || ms.Members[0].Name != "m0" {
		t.Fatalf("members: %v, %v; want m0 (%x)", ms, err, uint64(pebble1MemberID))
	}
}

// untarGz extracts the regular files and directories of a .tar.gz into dir.
func untarGz(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dir, filepath.Clean(h.Name))
		if !strings.HasPrefix(name, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("%s: %q leaves the directory", path, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(name, 0o700)
		case tar.TypeReg:
			err = writeFileFrom(name, tr, h.Size)
		}
		if err != nil {
			return err
		}
	}
}

func writeFileFrom(name string, r io.Reader, size int64) error {
	out, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.CopyN(out, r, size)
	return errors.Join(err, out.Close())
}
