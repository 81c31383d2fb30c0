package appendlog

import (
	"bytes"
	"errors"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenRun builds a small run and its hint the way the engine does: three
// records (set a=1, set b=two, delete a) and the footer; the hint lists the
// live record and the tombstone.
func goldenRun() (runFile, hintFile []byte) {
	var body []byte
	var hb hintWriter
	for _, r := range []struct {
		kind       byte
		key, value string
	}{{engines.KindSet, "a", "1"}, {engines.KindSet, "b", "two"}, {engines.KindDelete, "a", ""}} {
		off := len(body)
		body = engines.AppendRecord(body, r.kind, []byte(r.key), []byte(r.value))
		if r.key != "a" || r.kind == engines.KindDelete { // a=1 is superseded: no entry
			hb.add(r.kind, []byte(r.key), uint64(off), uint32(len(body)-off))
		}
	}
	crc := crc32c(body)
	runFile = appendFooter(bytes.Clone(body), footer{BodyLen: uint64(len(body)), Count: 3, BodyCRC: crc}, runMagic)
	return runFile, hb.encode(crc)
}

func TestGolden(t *testing.T) {
	run, hint := goldenRun()
	for _, g := range []struct {
		file string
		got  []byte
	}{{"golden.log", run}, {"golden.hint", hint}, {"golden.current", encodeCurrent(state{
		NextSeq: 3, SealFloor: 3,
		Levels: [][]runRef{{{Run: "0000000000000000-0a1b2c3d.log", Hint: "0000000000000001-0a1b2c3d.hint"}}, {{Run: "0000000000000002-0a1b2c3d.run", Hint: "0000000000000002-0a1b2c3e.hint"}}},
	})}} {
		path := filepath.Join("testdata", g.file)
		if *update {
			if err := os.WriteFile(path, g.got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(g.got, want) {
			t.Errorf("%s: encoding changed:\n got %x\nwant %x", g.file, g.got, want)
		}
	}

	// The golden files decode to what was encoded.
	want, _ := os.ReadFile(filepath.Join("testdata", "golden.log"))
	ft, err := decodeFooter(want[len(want)-footerSize:], runMagic, "golden.log", int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	if _, err := scanRecords(bytes.NewReader(want), "golden.log", 0, int64(ft.BodyLen), true, func(off int64, raw []byte, rec engines.Record) error {
		recs = append(recs, string([]byte{'0' + rec.Kind})+":"+string(rec.Key)+"="+string(rec.Value))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs, " "); got != "1:a=1 1:b=two 2:a=" || ft.Count != 3 {
		t.Errorf("golden run decodes to %q (count %d)", got, ft.Count)
	}
	hintBytes, _ := os.ReadFile(filepath.Join("testdata", "golden.hint"))
	var ents []string
	hft, err := decodeHint(hintBytes, "golden.hint", ft.BodyLen, func(kind byte, key []byte, off uint64, n uint32) {
		ents = append(ents, string([]byte{'0' + kind})+":"+string(key)+"@"+itoa(off)+"+"+itoa(uint64(n)))
	})
	if err != nil {
		t.Fatal(err)
	}
	// The live record and the tombstone, in offset order.
	if got := strings.Join(ents, " "); got != "1:b@13+15 2:a@28+12" || hft.LinkCRC != ft.BodyCRC {
		t.Errorf("golden hint decodes to %q (link %08x, run body %08x)", got, hft.LinkCRC, ft.BodyCRC)
	}
	cur, _ := os.ReadFile(filepath.Join("testdata", "golden.current"))
	st, err := decodeCurrent(cur)
	if err != nil || st.SealFloor != 3 || len(st.Levels) != 2 || st.Levels[1][0].Run != "0000000000000002-0a1b2c3d.run" {
		t.Errorf("golden CURRENT decodes to %+v, %v", st, err)
	}
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

// wantCorrupt asserts err is a *engines.CorruptionError naming file at off
// (off < 0: any offset).
func wantCorrupt(t *testing.T, err error, file string, off int64) {
	t.Helper()
	var ce *engines.CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, engines.ErrCorrupt) {
		t.Fatalf("err = %v, want a *engines.CorruptionError", err)
	}
	if ce.File != file || (off >= 0 && ce.Offset != off) {
		t.Fatalf("corruption names %s at %d, want %s at %d (%v)", ce.File, ce.Offset, file, off, err)
	}
}

func TestFooterCorruption(t *testing.T) {
	run, _ := goldenRun()
	size := int64(len(run))
	fo := size - footerSize
	for _, c := range []struct {
		name string
		pos  int64 // byte to flip
		off  int64 // offset the error must name
	}{
		{"body_len", fo, fo + 36},
		{"magic", fo + 30, fo + 28},
		{"footer_crc", fo + 37, fo + 36},
	} {
		b := bytes.Clone(run)
		b[c.pos] ^= 0xff
		_, err := decodeFooter(b[fo:], runMagic, "x.log", size)
		wantCorrupt(t, err, "x.log", c.off)
	}
	// A hint footer is not a run footer.
	_, hint := goldenRun()
	_, err := decodeFooter(hint[len(hint)-footerSize:], runMagic, "h", int64(len(hint)))
	wantCorrupt(t, err, "h", int64(len(hint))-footerSize+28)
	// Too short: the whole file is wrong, at no one offset.
	_, err = decodeFooter(run[:10], runMagic, "s", 10)
	wantCorrupt(t, err, "s", engines.UnknownOffset)
}

func TestHintCorruption(t *testing.T) {
	run, hint := goldenRun()
	body := uint64(len(run) - footerSize)
	// Every flipped byte and every truncation is detected.
	for i := range hint {
		b := bytes.Clone(hint)
		b[i] ^= 0x41
		if _, err := decodeHint(b, "h.hint", body, nil); !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("flip of byte %d: err = %v, want corruption", i, err)
		}
	}
	for n := 0; n < len(hint); n++ {
		if _, err := decodeHint(hint[:n], "h.hint", body, nil); !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("truncation to %d bytes: err = %v, want corruption", n, err)
		}
	}
	// A well-checksummed hint whose entry points outside its run names the
	// entry's offset.
	var hb hintWriter
	hb.add(engines.KindSet, []byte("a"), 0, 13)
	hb.add(engines.KindSet, []byte("b"), 100, 13)
	_, err := decodeHint(hb.encode(0), "p.hint", 50, nil)
	wantCorrupt(t, err, "p.hint", int64(hintEntryHdr+1))
}

func TestScanRecords(t *testing.T) {
	var body []byte
	for i := 0; i < 5; i++ {
		body = engines.AppendRecord(body, engines.KindSet, []byte{'k', byte('0' + i)}, bytes.Repeat([]byte{'v'}, 10))
	}
	recSize := int64(engines.RecordSize(2, 10))
	count := func(b []byte, strict bool) (int, int64, error) {
		n := 0
		end, err := scanRecords(bytes.NewReader(b), "f", 0, int64(len(b)), strict, func(int64, []byte, engines.Record) error {
			n++
			return nil
		})
		return n, end, err
	}
	if n, end, err := count(body, true); n != 5 || end != int64(len(body)) || err != nil {
		t.Fatalf("clean body: %d records, end %d, err %v", n, end, err)
	}
	// A torn tail: the lenient scan stops at the last whole record, the
	// strict one names the offset of the cut record.
	torn := body[:len(body)-3]
	if n, end, err := count(torn, false); n != 4 || end != 4*recSize || err != nil {
		t.Fatalf("torn body (lenient): %d records, end %d, err %v", n, end, err)
	}
	_, _, err := count(torn, true)
	wantCorrupt(t, err, "f", 4*recSize)
	// A flipped byte in the middle record.
	bad := bytes.Clone(body)
	bad[2*recSize+12] ^= 1
	if n, end, err := count(bad, false); n != 2 || end != 2*recSize || err != nil {
		t.Fatalf("corrupt body (lenient): %d records, end %d, err %v", n, end, err)
	}
	_, _, err = count(bad, true)
	wantCorrupt(t, err, "f", 2*recSize)
	// A header promising more bytes than the file has is not allocated for.
	huge := bytes.Clone(body[:recSize])
	huge = append(huge, make([]byte, engines.RecordHeaderSize)...)
	huge[recSize+4] = engines.KindSet
	huge[recSize+5] = 1
	huge[recSize+7], huge[recSize+8], huge[recSize+9] = 0xff, 0xff, 0xff
	_, _, err = count(huge, true)
	wantCorrupt(t, err, "f", recSize)
}

func TestStateDecode(t *testing.T) {
	good := encodeCurrent(state{NextSeq: 2, Levels: [][]runRef{{{Run: "0000000000000000-00000000.log", Hint: "0000000000000001-00000000.hint"}}}})
	if _, err := decodeCurrent(good); err != nil {
		t.Fatal(err)
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x20
		if _, err := decodeCurrent(b); err == nil {
			t.Fatalf("CURRENT with byte %d flipped decoded", i)
		}
	}
	for _, s := range []string{
		`{"format":1,"kind":"appendlog","next_seq":1,"levels":[[{"run":"../x","hint":"0000000000000000-00000000.hint"}]]}`,
		`{"format":1,"kind":"appendlog","next_seq":1,"levels":[[{"run":"0000000000000000-00000000.log","hint":"0000000000000000-00000000.hint"}]]}`,
		`{"format":1,"kind":"appendlog","next_seq":1,"levels":[[{"run":"0000000000000000-00000000.hint","hint":"0000000000000000-00000001.hint"}]]}`,
		`{"format":2,"kind":"appendlog","next_seq":1,"levels":[]}`,
		`{"format":1,"kind":"appendlog","next_seq":1,"levels":[],"extra":1}`,
	} {
		if _, err := decodeState([]byte(s), "st"); !errors.Is(err, engines.ErrCorrupt) {
			t.Errorf("state %s: err = %v, want corruption", s, err)
		}
	}
	if _, err := decodeState([]byte(`{"format":1,"kind":"lsm","next_seq":1,"levels":[]}`), "st"); !errors.Is(err, engines.ErrKindMismatch) {
		t.Errorf("state of kind lsm: err = %v, want ErrKindMismatch", err)
	}
}

func FuzzDecodeHint(f *testing.F) {
	run, hint := goldenRun()
	f.Add(hint, uint64(len(run)-footerSize))
	f.Add(hint[:len(hint)-1], uint64(100))
	f.Add([]byte{}, uint64(0))
	f.Add(new(hintWriter).encode(0), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, runBody uint64) {
		n := 0
		_, err := decodeHint(data, "fuzz.hint", runBody, func(kind byte, key []byte, off uint64, size uint32) {
			if len(key) == 0 || off+uint64(size) > runBody || (kind != engines.KindSet && kind != engines.KindDelete) {
				t.Fatalf("bad entry passed on: kind %d key %q off %d size %d", kind, key, off, size)
			}
			n++
		})
		if err != nil && !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("error is not corruption: %v", err)
		}
	})
}

// FuzzDecodeRun decodes data as a run file: footer, then a strict scan of its
// records, and as an active log (lenient scan).
func FuzzDecodeRun(f *testing.F) {
	run, _ := goldenRun()
	f.Add(run)
	f.Add(run[:len(run)-footerSize])
	f.Add(run[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		if ft, err := decodeFooter(tail(data, footerSize), runMagic, "fuzz.log", size); err == nil {
			_, err := scanRecords(bytes.NewReader(data), "fuzz.log", 0, int64(ft.BodyLen), true, func(off int64, raw []byte, rec engines.Record) error {
				if len(rec.Key) == 0 || off+int64(len(raw)) > int64(ft.BodyLen) {
					t.Fatalf("bad record passed on at %d", off)
				}
				return nil
			})
			if err != nil && !errors.Is(err, engines.ErrCorrupt) {
				t.Fatalf("strict scan error is not corruption: %v", err)
			}
		} else if !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("footer error is not corruption: %v", err)
		}
		end, err := scanRecords(bytes.NewReader(data), "fuzz.log", 0, size, false, nil)
		if err != nil || end < 0 || end > size {
			t.Fatalf("lenient scan: end %d of %d, err %v", end, size, err)
		}
	})
}

func FuzzDecodeCurrent(f *testing.F) {
	f.Add(encodeCurrent(state{NextSeq: 2, Levels: [][]runRef{{{Run: "0000000000000000-00000000.log", Hint: "0000000000000001-00000000.hint"}}}}))
	f.Add([]byte("{}\ncrc32c 00000000\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeCurrent(data)
		if err != nil {
			return
		}
		for _, lvl := range st.Levels {
			for _, rr := range lvl {
				if _, _, _, ok := engines.ParseRunName(rr.Run); !ok {
					t.Fatalf("accepted run name %q", rr.Run)
				}
			}
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) < n {
		return b
	}
	return b[len(b)-n:]
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, engines.CastagnoliTable) }
