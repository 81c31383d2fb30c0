package memonly

import (
	"bytes"
	"errors"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenState is the state pinned by testdata/golden.dump.
var goldenState = []struct{ k, v string }{{"a", "1"}, {"empty", ""}, {"key", "value"}}

func encodeDump(t testing.TB, kvs []struct{ k, v string }) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newDumpWriter(&buf)
	for _, kv := range kvs {
		if err := w.add([]byte(kv.k), []byte(kv.v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDumpGolden(t *testing.T) {
	got := encodeDump(t, goldenState)
	path := filepath.Join("testdata", "golden.dump")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("dump encoding changed (run with -update if intended):\n got %x\nwant %x", got, want)
	}
	var i int
	n, err := DecodeDump(want, "golden.dump", func(k, v []byte) error {
		if string(k) != goldenState[i].k || string(v) != goldenState[i].v {
			t.Errorf("record %d = %q=%q, want %q=%q", i, k, v, goldenState[i].k, goldenState[i].v)
		}
		i++
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("DecodeDump = %d, %v", n, err)
	}
}

func TestStateAndCurrentRoundTrip(t *testing.T) {
	seq, err := decodeState(encodeState(42))
	if err != nil || seq != 42 {
		t.Fatalf("state round trip = %d, %v", seq, err)
	}
	run := engines.RunInfo{Name: "000000000000002a-0badc0de.dump", Size: 123, CRC32C: 0xdeadbeef}
	for _, c := range []current{{nextSeq: 7}, {nextSeq: 43, run: &run}} {
		got, err := decodeCurrent(encodeCurrent(c))
		if err != nil || got.nextSeq != c.nextSeq || (got.run == nil) != (c.run == nil) || (c.run != nil && *got.run != *c.run) {
			t.Fatalf("CURRENT round trip of %+v = %+v, %v", c, got, err)
		}
	}
}

// TestEveryFlipDetected flips every bit position's byte of the golden dump,
// of a CURRENT file and of a state blob: each must be reported as corruption
// naming the file.
func TestEveryFlipDetected(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "golden.dump"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range dump {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(dump)
			b[i] ^= mask
			_, err := DecodeDump(b, "x.dump", func(k, v []byte) error { return nil })
			var ce *engines.CorruptionError
			if !errors.As(err, &ce) || ce.File != "x.dump" || ce.Offset < 0 || ce.Offset > int64(len(b)) {
				t.Fatalf("byte %d ^ %#x: %v, want a CorruptionError naming x.dump", i, mask, err)
			}
		}
	}
	run := engines.RunInfo{Name: "000000000000002a-0badc0de.dump", Size: 123, CRC32C: 1}
	cur := encodeCurrent(current{nextSeq: 43, run: &run})
	for i := range cur {
		b := bytes.Clone(cur)
		b[i] ^= 0x10
		if _, err := decodeCurrent(b); !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("CURRENT byte %d flipped: %v, want ErrCorrupt", i, err)
		}
	}
	st := encodeState(9)
	for i := range st {
		b := bytes.Clone(st)
		b[i] ^= 0x10
		if _, err := decodeState(b); !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("state byte %d flipped: %v, want ErrCorrupt", i, err)
		}
	}
}

func TestTruncationDetected(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "golden.dump"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(dump); n++ {
		if _, err := DecodeDump(dump[:n], "x.dump", func(k, v []byte) error { return nil }); !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("dump cut to %d bytes: %v, want ErrCorrupt", n, err)
		}
	}
	// Dropping a whole record from the front keeps a valid body shape, but the
	// body checksum and count disagree.
	first := engines.RecordSize(1, 1)
	if _, err := DecodeDump(dump[first:], "x.dump", func(k, v []byte) error { return nil }); !errors.Is(err, engines.ErrCorrupt) {
		t.Fatalf("dump without its first record: %v, want ErrCorrupt", err)
	}
}

// TestDecodeRefusesBadStructure builds dumps whose checksums are right but
// whose content breaks the format: unsorted keys, duplicates, tombstones,
// wrong counts.
func TestDecodeRefusesBadStructure(t *testing.T) {
	build := func(recs [][]byte, count int) []byte {
		var buf bytes.Buffer
		w := newDumpWriter(&buf)
		for _, r := range recs {
			w.buf = r
			buf.Write(r)
			w.crc = crc32Update(w.crc, r)
		}
		w.count = uint64(count)
		if err := w.finish(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	rec := func(kind byte, k, v string) []byte { return engines.AppendRecord(nil, kind, []byte(k), []byte(v)) }
	cases := map[string][]byte{
		"unsorted":  build([][]byte{rec(engines.KindSet, "b", "1"), rec(engines.KindSet, "a", "1")}, 2),
		"duplicate": build([][]byte{rec(engines.KindSet, "a", "1"), rec(engines.KindSet, "a", "2")}, 2),
		"tombstone": build([][]byte{rec(engines.KindDelete, "a", "")}, 1),
		"count":     build([][]byte{rec(engines.KindSet, "a", "1")}, 2),
		"huge":      build([][]byte{rec(engines.KindSet, "a", "1")}, 1<<40),
		"torn":      build([][]byte{rec(engines.KindSet, "a", "1")[:8]}, 0),
	}
	for name, b := range cases {
		if _, err := DecodeDump(b, "x.dump", func(k, v []byte) error { return nil }); !errors.Is(err, engines.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	// An empty dump is just a footer.
	if n, err := DecodeDump(build(nil, 0), "x.dump", func(k, v []byte) error { return nil }); err != nil || n != 0 {
		t.Fatalf("empty dump: %d, %v", n, err)
	}
}

// FuzzDecodeDump: the decoder never panics, and whatever it accepts
// re-encodes to the same bytes.
func FuzzDecodeDump(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "golden.dump"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(encodeDump(f, nil))
	f.Add(encodeDump(f, []struct{ k, v string }{{"k", ""}}))
	f.Add(golden[:len(golden)-1])
	f.Add([]byte("TKVMEMDP"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var kvs []struct{ k, v string }
		n, err := DecodeDump(data, "fuzz.dump", func(k, v []byte) error {
			kvs = append(kvs, struct{ k, v string }{string(k), string(v)})
			return nil
		})
		if err != nil {
			if !errors.Is(err, engines.ErrCorrupt) {
				t.Fatalf("error outside the corruption class: %v", err)
			}
			return
		}
		if n != uint64(len(kvs)) {
			t.Fatalf("count %d, %d records", n, len(kvs))
		}
		if re := encodeDump(t, kvs); !bytes.Equal(re, data) {
			t.Fatalf("accepted dump does not re-encode to itself")
		}
	})
}

func crc32Update(crc uint32, b []byte) uint32 { return crc32.Update(crc, engines.CastagnoliTable, b) }
