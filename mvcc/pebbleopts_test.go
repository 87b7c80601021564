package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestTablesCompressedAsLaidOut: the tables a member's database flushes and
// compacts, and the tables a received snapshot is turned into, all carry
// SetKeyLayout's compression (MinLZ on amd64): the CPU of compactions at
// size depends on it, and a table writer with Pebble's default (Snappy)
// would pass every other test.
func TestTablesCompressedAsLaidOut(t *testing.T) {
	fs := vfs.NewMem()
	o := &pebble.Options{FS: fs, Logger: quietLogger{}, FormatMajorVersion: pebble.FormatTableFormatV6} // the member's storeFormat
	SetKeyLayout(o)
	db, err := pebble.Open("db", o)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	value := bytes.Repeat([]byte("compressible "), 80)
	for i := range 2000 {
		if err := db.Set(fmt.Appendf(nil, "\x10k%05d", i), value, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	levels, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, level := range levels {
		for _, tab := range level {
			n++
			checkCompression(t, fmt.Sprintf("database table %s", tab.FileNum), tab.Properties.CompressionName, tab.Properties.CompressionStats)
		}
	}
	if n == 0 {
		t.Fatal("no table after flush and compaction")
	}

	tw := newTableWriter(fs, "recv", sstable.TableFormatPebblev6, 1<<30)
	if err := fs.MkdirAll("recv", 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if err := tw.add(fmt.Appendf(nil, "\x10k%05d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.finish(); err != nil {
		t.Fatal(err)
	}
	for _, p := range tw.paths {
		f, err := fs.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := sstable.NewSimpleReadable(f)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := sstable.NewReader(context.Background(), r, o.MakeReaderOptions())
		if err != nil {
			t.Fatal(err)
		}
		props, err := rd.ReadPropertiesBlock(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		checkCompression(t, "received table "+p, props.CompressionName, props.CompressionStats)
		_ = rd.Close()
	}
}

// checkCompression fails t unless a table's properties name the layout's
// compression profile and, on amd64, show MinLZ-compressed blocks.
func checkCompression(t *testing.T, what, name, stats string) {
	t.Helper()
	if name != tableCompression.Name {
		t.Errorf("%s: compression %q, want %q", what, name, tableCompression.Name)
	}
	if runtime.GOARCH == "amd64" && !strings.Contains(stats, "MinLZ") {
		t.Errorf("%s: compression stats %q, want MinLZ blocks", what, stats)
	}
}
