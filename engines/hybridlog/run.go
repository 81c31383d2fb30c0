package hybridlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
)

// blockSize is the unit of run reads through the block cache.
const blockSize = 4096

// maxCachedRead is the largest record read assembled from cached blocks;
// larger records are read directly.
const maxCachedRead = 256 << 10

// run is one sealed run file and its hint file, open for reads.
type run struct {
	name    string
	info    engines.RunInfo // the data file
	hint    engines.RunInfo // the hint file
	slot    uint32          // disk pointers name the run by slot
	merged  bool
	start   uint64 // log runs: logical address of the first record
	dataLen uint64
	f       engines.File
	fileID  uint64
	// refs counts the live set (1 while the run is live), checkpoint pins
	// and in-flight reads. The run's files are deleted when it drops to 0.
	refs atomic.Int64
}

// loc returns the location pointer of the record at off of r.
func (r *run) loc(off uint64) uint64 {
	if r.merged {
		return diskPtr(r.slot, off)
	}
	return r.start + off
}

// openRun opens the run named by info (with its hint file), checks the
// footer against the hint header and calls fn for each hint entry.
func openRun(fs engines.FS, dir string, info, hint engines.RunInfo, slot uint32, fn func(r *run, e hintEntry)) (*run, error) {
	f, err := engines.Open(fs, filepath.Join(dir, info.Name))
	if err != nil {
		return nil, fmt.Errorf("open run %s: %w", info.Name, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open run %s: %w", info.Name, err)
	}
	if st.Size() != info.Size {
		return nil, engines.Corruptf(info.Name, st.Size(), "run is %d bytes, state records %d", st.Size(), info.Size)
	}
	if info.Size < footerSize {
		return nil, engines.Corruptf(info.Name, info.Size, "run file of %d bytes is shorter than its footer", info.Size)
	}
	var fb [footerSize]byte
	if _, err := f.ReadAt(fb[:], info.Size-footerSize); err != nil {
		return nil, fmt.Errorf("read footer of %s: %w", info.Name, err)
	}
	ft, err := decodeFooter(fb[:], info.Name, info.Size-footerSize)
	if err != nil {
		return nil, err
	}
	hb, err := engines.ReadFile(fs, filepath.Join(dir, hint.Name))
	if err != nil {
		return nil, fmt.Errorf("read hint %s: %w", hint.Name, err)
	}
	if int64(len(hb)) != hint.Size {
		return nil, engines.Corruptf(hint.Name, int64(len(hb)), "hint is %d bytes, state records %d", len(hb), hint.Size)
	}
	r := &run{name: info.Name, info: info, hint: hint, slot: slot, merged: ft.merged, start: ft.start,
		dataLen: ft.dataLen, f: f, fileID: cache.NewFileID()}
	h, err := decodeHint(hb, hint.Name, func(e hintEntry) {
		if fn != nil {
			fn(r, e)
		}
	})
	if err != nil {
		return nil, err
	}
	if h.merged != ft.merged || h.start != ft.start || h.dataLen != ft.dataLen || h.count != ft.count {
		return nil, engines.Corruptf(hint.Name, 0, "hint header does not match the footer of run %s", info.Name)
	}
	if !ft.merged && ft.start+ft.dataLen > addrMask {
		return nil, engines.Corruptf(info.Name, info.Size-footerSize, "run address range overflows")
	}
	ok = true
	return r, nil
}

// readBlock returns block i of r's data, through the cache.
func (d *DB) readBlock(r *run, i uint64) ([]byte, error) {
	off := i * blockSize
	if b, ok := d.o.Cache.Get(r.fileID, int64(off)); ok {
		return b, nil
	}
	n := min(uint64(blockSize), r.dataLen-off)
	b := make([]byte, n)
	if _, err := r.f.ReadAt(b, int64(off)); err != nil {
		return nil, fmt.Errorf("read run %s at %d: %w", r.name, off, err)
	}
	d.o.Cache.Set(r.fileID, int64(off), b)
	return b, nil
}

// readRange returns n bytes at off of r's data. The result may alias a
// cached block and must not be modified.
func (d *DB) readRange(r *run, off, n uint64) ([]byte, error) {
	if off+n > r.dataLen || off+n < off {
		return nil, engines.Corruptf(r.name, int64(off), "record of %d bytes runs past the run's %d data bytes", n, r.dataLen)
	}
	if d.o.Cache == nil || n > maxCachedRead {
		b := make([]byte, n)
		if _, err := r.f.ReadAt(b, int64(off)); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
			return nil, fmt.Errorf("read run %s at %d: %w", r.name, off, err)
		}
		return b, nil
	}
	first, last := off/blockSize, (off+n-1)/blockSize
	if first == last {
		b, err := d.readBlock(r, first)
		if err != nil {
			return nil, err
		}
		in := off - first*blockSize
		return b[in : in+n], nil
	}
	out := make([]byte, 0, n)
	for i := first; i <= last; i++ {
		b, err := d.readBlock(r, i)
		if err != nil {
			return nil, err
		}
		lo, hi := uint64(0), uint64(len(b))
		if i == first {
			lo = off - first*blockSize
		}
		if i == last {
			hi = off + n - last*blockSize
		}
		out = append(out, b[lo:hi]...)
	}
	return out, nil
}

// readRecord reads and checks the record at off of r, which the index says
// belongs to key. It returns a copy of the value.
func (d *DB) readRecord(r *run, off uint64, key []byte) ([]byte, byte, error) {
	// One read usually holds the whole record: a block from the cache, or
	// a small read when there is no cache.
	guess := uint64(engines.RecordHeaderSize + len(key) + 128)
	if d.o.Cache != nil {
		guess = blockSize - off%blockSize
	}
	guess = min(guess, r.dataLen-min(off, r.dataLen))
	if guess < engines.RecordHeaderSize {
		guess = engines.RecordHeaderSize
	}
	buf, err := d.readRange(r, off, guess)
	if err != nil {
		return nil, 0, err
	}
	_, klen, vlen, bad, err := engines.DecodeRecordHeader(buf)
	if err != nil {
		return nil, 0, engines.Corruptf(r.name, int64(off), "record header runs past the run data")
	}
	if bad != "" {
		return nil, 0, engines.Corruptf(r.name, int64(off), "%s", bad)
	}
	n := uint64(engines.RecordSize(klen, vlen))
	if n > uint64(len(buf)) {
		if buf, err = d.readRange(r, off, n); err != nil {
			return nil, 0, err
		}
	}
	rec, _, err := engines.DecodeRecord(buf[:n], r.name, int64(off))
	if err != nil {
		if errors.Is(err, engines.ErrTruncated) {
			return nil, 0, engines.Corruptf(r.name, int64(off), "record runs past the run data")
		}
		return nil, 0, err
	}
	if !bytes.Equal(rec.Key, key) {
		return nil, 0, engines.Corruptf(r.name, int64(off), "record holds another key than the index expects")
	}
	v := make([]byte, len(rec.Value))
	copy(v, rec.Value)
	return v, rec.Kind, nil
}
