package etcdsnap

import (
	"errors"
	"os"
	"testing"
)

// FuzzOpen feeds damaged databases (the hash check skipped, as
// --skip-hash-check does) to the reader: every input is refused with
// ErrCorrupt or read whole, never a panic or a fault. Seeded with a real
// etcd 3.7.3 snapshot's database.
func FuzzOpen(f *testing.F) {
	good, err := os.ReadFile(recordedFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good[:len(good)-HashSize])
	f.Add(good[:4096])
	f.Fuzz(func(t *testing.T, db []byte) {
		if err := readAll(writeTemp(t, db), true); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v is not ErrCorrupt", err)
		}
	})
}
