package record

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpenRoundTrip(t *testing.T) {
	for _, tc := range []struct{ key, payload string }{
		{"", ""}, {"k", ""}, {"", "v"}, {"key", "value"}, {"\x00\xff", "\x00\x00\x00"},
	} {
		sealed := Seal(nil, []byte(tc.key), []byte(tc.payload))
		got, err := Open([]byte(tc.key), sealed)
		if err != nil || !bytes.Equal(got, []byte(tc.payload)) {
			t.Fatalf("Open(Seal(%q,%q)) = %q, %v", tc.key, tc.payload, got, err)
		}
		inPlace := append(make([]byte, HeaderSize), tc.payload...)
		SealInPlace([]byte(tc.key), inPlace)
		if !bytes.Equal(inPlace, sealed) {
			t.Fatalf("SealInPlace(%q,%q) = %x, Seal gives %x", tc.key, tc.payload, inPlace, sealed)
		}
	}
}

func TestOpenDetectsEveryBitFlip(t *testing.T) {
	key, payload := []byte("/registry/pods/a"), []byte("some value bytes")
	sealed := Seal(nil, key, payload)
	for i := range sealed {
		for bit := 0; bit < 8; bit++ {
			c := append([]byte(nil), sealed...)
			c[i] ^= 1 << bit
			if _, err := Open(key, c); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip byte %d bit %d: err = %v, want ErrCorrupt", i, bit, err)
			}
		}
	}
	if _, err := Open([]byte("/registry/pods/b"), sealed); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("value under another key: err = %v, want ErrCorrupt", err)
	}
	if _, err := Open(key, sealed[:3]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short value: err = %v, want ErrCorrupt", err)
	}
}
