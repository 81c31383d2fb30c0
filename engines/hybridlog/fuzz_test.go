package hybridlog

import (
	"errors"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

// FuzzDecodeRun feeds arbitrary bytes to the run decoder: it must never
// panic, and anything it refuses is corruption naming the file.
func FuzzDecodeRun(f *testing.F) {
	run, _, _ := goldenFiles()
	f.Add(run)
	f.Add(run[:len(run)-1])
	f.Add([]byte{})
	f.Add(appendFooter(nil, footer{merged: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := checkRun(b, "fuzz.hlog", func(off int64, r engines.Record) error {
			if len(r.Key) == 0 {
				t.Fatalf("record at %d with an empty key accepted", off)
			}
			return nil
		})
		if err != nil {
			if !errors.Is(err, engines.ErrCorrupt) {
				t.Fatalf("refusal is not corruption: %v", err)
			}
			return
		}
		if ft.dataLen != uint64(len(b)-footerSize) {
			t.Fatalf("accepted footer with dataLen %d for %d bytes", ft.dataLen, len(b))
		}
	})
}

// FuzzDecodeHint feeds arbitrary bytes to the hint decoder.
func FuzzDecodeHint(f *testing.F) {
	_, hint, _ := goldenFiles()
	f.Add(hint)
	f.Add(finishHint(appendHintHeader(nil, true, 0), 0, 0))
	f.Add(hint[:hintHdrSize])
	f.Fuzz(func(t *testing.T, b []byte) {
		var sum uint64
		h, err := decodeHint(b, "fuzz.hint", func(e hintEntry) {
			if len(e.key) == 0 || e.off != sum {
				t.Fatalf("entry %+v at running offset %d", e, sum)
			}
			sum += uint64(engines.RecordSize(len(e.key), e.vlen))
		})
		if err != nil {
			if !errors.Is(err, engines.ErrCorrupt) {
				t.Fatalf("refusal is not corruption: %v", err)
			}
			return
		}
		if sum != h.dataLen {
			t.Fatalf("entries cover %d bytes, header says %d", sum, h.dataLen)
		}
	})
}

// FuzzDecodeCurrent feeds arbitrary bytes to the CURRENT and state decoders.
func FuzzDecodeCurrent(f *testing.F) {
	_, _, cur := goldenFiles()
	f.Add(cur)
	f.Add(state{nextSeq: 3, levels: [][]string{nil, {"0000000000000002-0badcafe.hlog"}}}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := decodeCurrent(b, currentName); err != nil && !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("CURRENT refusal is not corruption: %v", err)
		}
		st, err := decodeState(b, "state", 0)
		if err != nil {
			if !errors.Is(err, engines.ErrCorrupt) {
				t.Fatalf("state refusal is not corruption: %v", err)
			}
			return
		}
		if _, err := decodeState(st.encode(), "state", 0); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
	})
}
