package hybridlog

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	goldenRun  = "0000000000000001-0badcafe.hlog"
	goldenHint = "0000000000000001-0badcafe.hint"
)

// goldenFiles builds a small log run (start address 4096) with two values
// and a tombstone, its hint file, and a CURRENT naming them.
func goldenFiles() (run, hint, current []byte) {
	type rec struct {
		kind byte
		k, v string
	}
	recs := []rec{{engines.KindSet, "apple", "red"}, {engines.KindSet, "kiwi", ""}, {engines.KindDelete, "apple", ""}}
	hint = appendHintHeader(nil, false, 4096)
	for _, r := range recs {
		run = engines.AppendRecord(run, r.kind, []byte(r.k), []byte(r.v))
		hint = appendHintEntry(hint, r.kind, []byte(r.k), len(r.v))
	}
	dataLen := uint64(len(run))
	run = appendFooter(run, footer{dataLen: dataLen, count: 3, start: 4096})
	hint = finishHint(hint, dataLen, 3)
	st := state{nextSeq: 2, nextAddr: 4096 + dataLen, levels: [][]string{{goldenRun}}}
	cp := engines.Checkpoint{Kind: Kind, State: st.encode(), Runs: []engines.RunInfo{
		{Name: goldenRun, Size: int64(len(run)), CRC32C: crc(run)},
		{Name: goldenHint, Size: int64(len(hint)), CRC32C: crc(hint)},
	}}
	return run, hint, encodeCurrent(cp)
}

func crc(b []byte) uint32 { return crc32.Checksum(b, engines.CastagnoliTable) }

func TestGolden(t *testing.T) {
	run, hint, current := goldenFiles()
	for name, got := range map[string][]byte{goldenRun: run, goldenHint: hint, currentName: current} {
		path := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encoding changed: this breaks every file ever written\n got %x\nwant %x", name, got, want)
		}
	}
	// The golden files decode to what they were built from.
	var recs []string
	f, err := checkRun(run, goldenRun, func(off int64, r engines.Record) error {
		recs = append(recs, fmt.Sprintf("%d:%d:%s=%s", off, r.Kind, r.Key, r.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.start != 4096 || f.count != 3 || f.merged || fmt.Sprint(recs) != "[0:1:apple=red 19:1:kiwi= 34:2:apple=]" {
		t.Fatalf("run decodes to %+v %v", f, recs)
	}
	var ents []string
	h, err := decodeHint(hint, goldenHint, func(e hintEntry) {
		ents = append(ents, fmt.Sprintf("%d:%d:%s:%d", e.off, e.kind, e.key, e.vlen))
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.start != 4096 || h.count != 3 || h.dataLen != f.dataLen || fmt.Sprint(ents) != "[0:1:apple:3 19:1:kiwi:0 34:2:apple:0]" {
		t.Fatalf("hint decodes to %+v %v", h, ents)
	}
	cp, st, err := decodeCurrent(current, currentName)
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Runs) != 2 || st.nextSeq != 2 || st.nextAddr != 4096+f.dataLen || len(st.levels) != 1 || st.levels[0][0] != goldenRun {
		t.Fatalf("CURRENT decodes to %+v %+v", cp, st)
	}
}

// checkCorrupt asserts err is a *engines.CorruptionError naming file with an
// offset inside [0, size].
func checkCorrupt(t *testing.T, what string, err error, file string, size int) {
	t.Helper()
	var ce *engines.CorruptionError
	if !errors.Is(err, engines.ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("%s: got %v, want a corruption error", what, err)
	}
	if ce.File != file || ce.Offset < 0 || ce.Offset > int64(size) {
		t.Fatalf("%s: corruption names %s at %d, want %s within %d bytes", what, ce.File, ce.Offset, file, size)
	}
}

// TestCorruptionSweep flips every byte of each golden file, and cuts each at
// every length: every damage must be reported as corruption naming the file
// and an offset inside it.
func TestCorruptionSweep(t *testing.T) {
	run, hint, current := goldenFiles()
	decoders := []struct {
		name   string
		data   []byte
		decode func(b []byte) error
	}{
		{goldenRun, run, func(b []byte) error { _, err := checkRun(b, goldenRun, nil); return err }},
		{goldenHint, hint, func(b []byte) error { _, err := decodeHint(b, goldenHint, nil); return err }},
		{currentName, current, func(b []byte) error { _, _, err := decodeCurrent(b, currentName); return err }},
	}
	for _, d := range decoders {
		for i := range d.data {
			b := bytes.Clone(d.data)
			b[i] ^= 0x5a
			checkCorrupt(t, fmt.Sprintf("%s: byte %d flipped", d.name, i), d.decode(b), d.name, len(b))
		}
		for n := 0; n < len(d.data); n++ {
			checkCorrupt(t, fmt.Sprintf("%s: cut to %d bytes", d.name, n), d.decode(d.data[:n]), d.name, n)
		}
	}
}

// TestCorruptRecordOffset checks that a damaged record is reported at its
// own offset.
func TestCorruptRecordOffset(t *testing.T) {
	run, _, _ := goldenFiles()
	run[19+engines.RecordHeaderSize] ^= 1 // the key of the second record
	_, err := checkRun(run, goldenRun, nil)
	var ce *engines.CorruptionError
	if !errors.As(err, &ce) || ce.Offset != 19 {
		t.Fatalf("got %v, want corruption at offset 19", err)
	}
}

func TestStateRejects(t *testing.T) {
	good := state{nextSeq: 5, nextAddr: 10, levels: [][]string{{"0000000000000001-0badcafe.hlog"}}}
	if _, err := decodeState(good.encode(), "s", 0); err != nil {
		t.Fatal(err)
	}
	bad := map[string]state{
		"not a run name":   {nextSeq: 5, levels: [][]string{{"CURRENT"}}},
		"wrong extension":  {nextSeq: 5, levels: [][]string{{"0000000000000001-0badcafe.hint"}}},
		"seq not below":    {nextSeq: 1, levels: [][]string{{"0000000000000001-0badcafe.hlog"}}},
		"listed twice":     {nextSeq: 5, levels: [][]string{{"0000000000000001-0badcafe.hlog"}, {"0000000000000001-0badcafe.hlog"}}},
		"path in the name": {nextSeq: 5, levels: [][]string{{"../000000000001-0badcafe.hlog"}}},
	}
	for what, s := range bad {
		if _, err := decodeState(s.encode(), "s", 0); !errors.Is(err, engines.ErrCorrupt) {
			t.Errorf("%s: got %v, want corruption", what, err)
		}
	}
}
