package record

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen: opening any stored bytes under any key never panics, fails
// only with ErrCorrupt, and accepts exactly what Seal produces.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("k"), Seal(nil, []byte("k"), []byte("payload")))
	f.Add([]byte("k"), Seal(nil, []byte("other"), []byte("payload")))
	f.Add([]byte{}, Seal(nil, nil, nil))
	f.Add([]byte{0x10, 0xff}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		p, err := Open(key, value)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := Seal(nil, key, p); !bytes.Equal(again, value) {
			t.Fatalf("accepted %x, which Seal writes as %x", value, again)
		}
	})
}
