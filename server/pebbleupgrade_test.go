package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	pebblev1 "github.com/cockroachdb/pebble"
)

// A store left by Pebble v1 at any format, including one an upgrade was
// interrupted in (each ratchet step is durable on its own, so a crash leaves
// the store at one of v1's formats), is upgraded once, logged once, and then
// opened by Pebble v2 at storeFormat with every key, from sstables and from
// the WAL alike. A store already at v1's newest format needs no v1 step.
func TestUpgradeV1Store(t *testing.T) {
	for _, at := range []pebblev1.FormatMajorVersion{
		pebblev1.FormatMostCompatible, // what a synod release on Pebble v1 wrote
		pebblev1.FormatSplitUserKeysMarked,
		pebblev1.FormatSSTableValueBlocks, // the last one v2 refuses
		pebblev1.FormatNewest,             // crash after the v1 step
	} {
		dir := t.TempDir()
		db, err := pebblev1.Open(dir, &pebblev1.Options{FormatMajorVersion: at, Logger: quietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Set([]byte("flushed"), []byte("1"), pebblev1.Sync); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := db.Set([]byte("in-wal"), []byte("2"), pebblev1.Sync); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		var logged bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logged, nil))
		if err := upgradeIfV1(&Config{}, dir, log); err != nil {
			t.Fatalf("format %s: %v", at, err)
		}
		wantUpgrade := at < pebblev1.FormatFlushableIngest
		if n := strings.Count(logged.String(), "upgraded the database"); n != map[bool]int{true: 1}[wantUpgrade] {
			t.Fatalf("format %s: upgrade logged %d times:\n%s", at, n, logged.String())
		}
		if again, err := needsV1Upgrade(dir); again || err != nil {
			t.Fatalf("format %s: still needs an upgrade: %v, %v", at, again, err)
		}
		v2, err := openPebble(dir)
		if err != nil {
			t.Fatalf("format %s: v2 open: %v", at, err)
		}
		for k, want := range map[string]string{"flushed": "1", "in-wal": "2"} {
			v, closer, err := v2.Get([]byte(k))
			if err != nil || string(v) != want {
				t.Fatalf("format %s: %s = %q, %v; want %q", at, k, v, err, want)
			}
			closer.Close()
		}
		if got := v2.FormatMajorVersion(); got != storeFormat {
			t.Fatalf("format %s: v2 opened it at %s, want %s", at, got, storeFormat)
		}
		if err := v2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A directory with no database, or a new one, needs no upgrade.
func TestNeedsV1UpgradeNewStore(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{dir + "/missing", dir} {
		if old, err := needsV1Upgrade(d); old || err != nil {
			t.Fatalf("%s: %v, %v", d, old, err)
		}
	}
	db, err := openPebble(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if old, err := needsV1Upgrade(dir); old || err != nil {
		t.Fatalf("a new store: %v, %v", old, err)
	}
}
