package lsm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

// FuzzDecodeRun feeds arbitrary bytes to the run decoder (footer, fence
// index, filter) and, when they decode, to the block checker and lookup. It
// must never panic, and a failure must be corruption.
func FuzzDecodeRun(f *testing.F) {
	golden, _ := buildTestRun(f, 2, goldenRecs)
	f.Add(golden)
	one, _ := buildTestRun(f, 1, []testRec{{engines.KindSet, "k", "v"}})
	f.Add(one)
	dense, _ := buildTestRun(f, 16, goldenRecs)
	f.Add(dense)
	f.Add(golden[:len(golden)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeRunMeta("f.sst", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, engines.ErrCorrupt) {
				t.Fatalf("decode error is not corruption: %v", err)
			}
			return
		}
		for i := 0; i < m.fences.n(); i++ {
			off, end, _ := m.blockBounds(i)
			if off < 0 || end > int64(len(data)) || off > end {
				t.Fatalf("block %d bounds [%d,%d) outside %d bytes", i, off, end, len(data))
			}
			block := data[off:end]
			if err := checkBlock("f.sst", m, i, off, block); err != nil {
				if !errors.Is(err, engines.ErrCorrupt) {
					t.Fatalf("block error is not corruption: %v", err)
				}
				continue
			}
			// A checked block finds its own fence key.
			if _, _, found := searchBlock(block, m.fences.key(i)); !found {
				t.Fatalf("checked block %d misses its fence key", i)
			}
		}
	})
}

// FuzzDecodeState feeds arbitrary bytes to the CURRENT / checkpoint state
// decoder; what decodes must re-encode to the same bytes.
func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(state{nextSeq: 1}))
	f.Add(encodeState(state{nextSeq: 9, levels: [][]engines.RunInfo{
		{{Name: "0000000000000001-0badcafe.sst", Size: 100, CRC32C: 1}},
		{},
		{{Name: "0000000000000002-0badcafe.sst", Size: 200, CRC32C: 2}},
	}}))
	f.Add([]byte("TKVLSMST"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState("CURRENT", data)
		if err != nil {
			if !errors.Is(err, engines.ErrCorrupt) {
				t.Fatalf("decode error is not corruption: %v", err)
			}
			return
		}
		if !bytes.Equal(encodeState(st), data) {
			t.Fatal("decoded state does not re-encode to the same bytes")
		}
	})
}
