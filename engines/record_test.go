package engines

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	cases := []struct {
		kind       byte
		key, value []byte
	}{
		{KindSet, []byte("k"), []byte("v")},
		{KindSet, []byte("key"), nil},
		{KindSet, bytes.Repeat([]byte("k"), MaxKeySize), bytes.Repeat([]byte("v"), 1000)},
		{KindDelete, []byte("gone"), nil},
	}
	for _, c := range cases {
		buf := AppendRecord([]byte("prefix"), c.kind, c.key, c.value)
		rec, n, err := DecodeRecord(buf[6:], "f", 6)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if n != RecordSize(len(c.key), len(c.value)) || n != len(buf)-6 {
			t.Fatalf("size %d, want %d", n, len(buf)-6)
		}
		if rec.Kind != c.kind || !bytes.Equal(rec.Key, c.key) || !bytes.Equal(rec.Value, c.value) {
			t.Fatalf("got %+v", rec)
		}
		put := make([]byte, n)
		if m := PutRecord(put, c.kind, c.key, c.value); m != n || !bytes.Equal(put, buf[6:]) {
			t.Fatalf("PutRecord differs from AppendRecord")
		}
	}
}

// TestRecordGolden pins the framing bytes: changing them breaks every file
// ever written.
func TestRecordGolden(t *testing.T) {
	got := hex.EncodeToString(AppendRecord(nil, KindSet, []byte("key"), []byte("value")))
	const want = "e569175801030005000000" + "6b6579" + "76616c7565"
	if got != want {
		t.Fatalf("record bytes changed:\n got %s\nwant %s", got, want)
	}
}

func TestRecordCorruptionAndTruncation(t *testing.T) {
	rec := AppendRecord(nil, KindSet, []byte("key"), []byte("value"))
	for i := range rec {
		if _, _, err := DecodeRecord(rec[:i], "f", 0); !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix of %d bytes: err %v, want ErrTruncated", i, err)
		}
	}
	for i := range rec {
		bad := bytes.Clone(rec)
		bad[i] ^= 0x40
		_, _, err := DecodeRecord(bad, "run-1", 42)
		if err == nil {
			t.Fatalf("flip at %d not detected", i)
		}
		if errors.Is(err, ErrTruncated) {
			continue // a flipped length can make the record look longer than the buffer
		}
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.File != "run-1" || ce.Offset != 42 || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: err %v, want corruption naming run-1 at 42", i, err)
		}
	}
}

func TestLimits(t *testing.T) {
	if err := CheckKey(nil); !errors.Is(err, ErrLimit) {
		t.Fatalf("empty key: %v", err)
	}
	if err := CheckKey(make([]byte, MaxKeySize+1)); !errors.Is(err, ErrLimit) {
		t.Fatalf("long key: %v", err)
	}
	if err := CheckKV([]byte("k"), make([]byte, MaxValueSize+1)); !errors.Is(err, ErrLimit) {
		t.Fatalf("large value: %v", err)
	}
	if err := CheckKV(make([]byte, MaxKeySize), make([]byte, MaxValueSize)); err != nil {
		t.Fatalf("limits themselves refused: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, KindSet, []byte("key"), []byte("value")))
	f.Add(AppendRecord(nil, KindDelete, []byte("k"), nil))
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := DecodeRecord(b, "fuzz", 0)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if n > len(b) || n != RecordSize(len(rec.Key), len(rec.Value)) {
			t.Fatalf("bad size %d of %d", n, len(b))
		}
		if !bytes.Equal(AppendRecord(nil, rec.Kind, rec.Key, rec.Value), b[:n]) {
			t.Fatalf("re-encoding differs")
		}
	})
}
