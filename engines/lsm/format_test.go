package lsm

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

type testRec struct {
	kind       byte
	key, value string
}

// goldenRecs is the content of testdata/golden.sst: five records (one
// tombstone, one empty value) at density 2, so three fences.
var goldenRecs = []testRec{
	{engines.KindSet, "apple", "red"},
	{engines.KindSet, "banana", ""},
	{engines.KindDelete, "cherry", ""},
	{engines.KindSet, "date", "brown"},
	{engines.KindSet, "elderberry", "purple"},
}

func buildTestRun(t testing.TB, density int, recs []testRec) ([]byte, *runMeta) {
	t.Helper()
	var buf bytes.Buffer
	b := newRunBuilder(&buf, density)
	for _, r := range recs {
		if err := b.add(r.kind, []byte(r.key), []byte(r.value)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.finish()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed: the on-disk format differs from the golden file\ngot  %x\nwant %x", name, got, want)
	}
}

// TestGoldenRun pins the bytes of a run file and checks that decoding the
// golden file gives what the builder described.
func TestGoldenRun(t *testing.T) {
	data, built := buildTestRun(t, 2, goldenRecs)
	checkGolden(t, "golden.sst", data)
	m, err := decodeRunMeta("golden.sst", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if m.dataLen != built.dataLen || m.recordCount != 5 || m.density != 2 || m.fences.n() != 3 {
		t.Fatalf("decoded meta %+v, built %+v", m, built)
	}
	for i, want := range []string{"apple", "cherry", "elderberry"} {
		if got := string(m.fences.key(i)); got != want || m.fences.offs[i] != built.fences.offs[i] {
			t.Errorf("fence %d = %q@%d, want %q@%d", i, got, m.fences.offs[i], want, built.fences.offs[i])
		}
	}
	if string(m.fences.lastKey) != "elderberry" {
		t.Errorf("last key %q", m.fences.lastKey)
	}
	if !bytes.Equal(m.filterBytes, built.filterBytes) {
		t.Error("decoded filter differs from the built one")
	}
	// Every block checks and finds its keys; absent keys are absent.
	for i := 0; i < m.fences.n(); i++ {
		off, end, _ := m.blockBounds(i)
		if err := checkBlock("golden.sst", m, i, off, data[off:end]); err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	for _, r := range goldenRecs {
		if !m.filter.mayContain(keyHash([]byte(r.key))) {
			t.Errorf("filter misses %q", r.key)
		}
		i := m.fences.search([]byte(r.key))
		off, end, _ := m.blockBounds(i)
		kind, v, found := searchBlock(data[off:end], []byte(r.key))
		if !found || kind != r.kind || string(v) != r.value {
			t.Errorf("search %q = %d %q %v", r.key, kind, v, found)
		}
	}
	for _, k := range []string{"aardvark", "blueberry", "fig"} {
		i := m.fences.search([]byte(k))
		if i < 0 {
			continue
		}
		off, end, _ := m.blockBounds(i)
		if _, _, found := searchBlock(data[off:end], []byte(k)); found {
			t.Errorf("found absent key %q", k)
		}
	}
}

// TestGoldenState pins the bytes of the CURRENT / checkpoint state format.
func TestGoldenState(t *testing.T) {
	st := state{nextSeq: 0x2a, levels: [][]engines.RunInfo{
		{{Name: "0000000000000029-0badcafe.sst", Size: 4096, CRC32C: 0x01020304}},
		{},
		{{Name: "0000000000000010-0badcafe.sst", Size: 1 << 20, CRC32C: 0xa0b0c0d0}, {Name: "0000000000000003-12345678.sst", Size: 77, CRC32C: 7}},
	}}
	data := encodeState(st)
	checkGolden(t, "golden.state", data)
	got, err := decodeState("golden.state", data)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(st) {
		t.Fatalf("decoded %+v, want %+v", got, st)
	}
}

func wantCorrupt(t *testing.T, err error, file string) *engines.CorruptionError {
	t.Helper()
	if !errors.Is(err, engines.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	var ce *engines.CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *engines.CorruptionError", err)
	}
	if ce.File != file {
		t.Fatalf("corruption names file %q, want %q", ce.File, file)
	}
	return ce
}

// TestRunMetaCorruption flips every byte of the fence index, filter and
// footer: each flip is reported as corruption of the file, at an offset
// inside the run's metadata.
func TestRunMetaCorruption(t *testing.T) {
	data, m := buildTestRun(t, 2, goldenRecs)
	for pos := m.dataLen; pos < int64(len(data)); pos++ {
		bad := bytes.Clone(data)
		bad[pos] ^= 0x5a
		_, err := decodeRunMeta("r.sst", bytes.NewReader(bad), int64(len(bad)))
		ce := wantCorrupt(t, err, "r.sst")
		if ce.Offset < m.dataLen || ce.Offset >= int64(len(data)) {
			t.Fatalf("flip at %d reported at offset %d, outside the metadata [%d,%d)", pos, ce.Offset, m.dataLen, len(data))
		}
	}
}

// TestRunTruncated cuts the run at every length: never a success, always
// corruption.
func TestRunTruncated(t *testing.T) {
	data, _ := buildTestRun(t, 2, goldenRecs)
	for n := 0; n < len(data); n++ {
		_, err := decodeRunMeta("r.sst", bytes.NewReader(data[:n]), int64(n))
		wantCorrupt(t, err, "r.sst")
	}
}

// TestBlockCorruption flips every byte of the data section: checkBlock
// reports corruption of the file at the offset of the record holding the
// byte (or the block's offset for count and fence checks).
func TestBlockCorruption(t *testing.T) {
	data, m := buildTestRun(t, 2, goldenRecs)
	// Record offsets, to know which record a byte belongs to.
	var recStart []int64
	for off := int64(0); off < m.dataLen; {
		recStart = append(recStart, off)
		_, n, err := engines.DecodeRecord(data[off:m.dataLen], "r.sst", off)
		if err != nil {
			t.Fatal(err)
		}
		off += int64(n)
	}
	for pos := int64(0); pos < m.dataLen; pos++ {
		bad := bytes.Clone(data)
		bad[pos] ^= 0x01
		var err error
		blockOff := int64(0)
		for i := 0; i < m.fences.n(); i++ {
			off, end, _ := m.blockBounds(i)
			if pos >= off && pos < end {
				blockOff = off
				err = checkBlock("r.sst", m, i, off, bad[off:end])
			}
		}
		ce := wantCorrupt(t, err, "r.sst")
		rec := int64(0)
		for _, s := range recStart {
			if s <= pos {
				rec = s
			}
		}
		if ce.Offset != rec && ce.Offset != blockOff {
			t.Fatalf("flip at %d: corruption reported at %d, want the record at %d or the block at %d (%v)", pos, ce.Offset, rec, blockOff, err)
		}
	}
}

func TestStateCorruption(t *testing.T) {
	st := state{nextSeq: 9, levels: [][]engines.RunInfo{{{Name: "0000000000000001-0badcafe.sst", Size: 100, CRC32C: 1}}}}
	data := encodeState(st)
	for pos := range data {
		bad := bytes.Clone(data)
		bad[pos] ^= 0x80
		_, err := decodeState("CURRENT", bad)
		wantCorrupt(t, err, "CURRENT")
	}
	for n := 0; n < len(data); n++ {
		_, err := decodeState("CURRENT", data[:n])
		wantCorrupt(t, err, "CURRENT")
	}
	// Well-formed but invalid contents.
	for name, s := range map[string]state{
		"duplicate run": {nextSeq: 9, levels: [][]engines.RunInfo{{st.levels[0][0]}, {st.levels[0][0]}}},
		"bad name":      {nextSeq: 9, levels: [][]engines.RunInfo{{{Name: "../etc/passwd", Size: 100}}}},
		"wrong ext":     {nextSeq: 9, levels: [][]engines.RunInfo{{{Name: "0000000000000001-0badcafe.log", Size: 100}}}},
		"seq too high":  {nextSeq: 1, levels: st.levels},
		"tiny size":     {nextSeq: 9, levels: [][]engines.RunInfo{{{Name: "0000000000000001-0badcafe.sst", Size: 3}}}},
	} {
		if _, err := decodeState("CURRENT", encodeState(s)); !errors.Is(err, engines.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}
