package lsm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
)

// run is one open, immutable run file. It is reference counted: the live set
// holds one reference, each read state one, each pinning checkpoint one, and
// a merge its inputs. When the count drops to zero the file is closed, and if
// the run is dead (obsolete) it is deleted and the listener told.
type run struct {
	db     *DB
	info   engines.RunInfo
	seq    uint64
	f      engines.File
	fileID uint64
	meta   *runMeta

	refs     atomic.Int32
	obsolete atomic.Bool
}

// openRun opens the run named info.Name in dir and reads its footer, fences
// and filter.
func openRun(d *DB, info engines.RunInfo) (*run, error) {
	seq, _, _, ok := engines.ParseRunName(info.Name)
	if !ok {
		return nil, fmt.Errorf("lsm: open run: bad run name %q", info.Name)
	}
	f, err := engines.Open(d.fs, filepath.Join(d.dir, info.Name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("lsm: open run: %w: %s", engines.ErrMissingRun, info.Name)
		}
		return nil, fmt.Errorf("lsm: open run %s: %w", info.Name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lsm: open run %s: %w", info.Name, err)
	}
	if st.Size() != info.Size {
		f.Close()
		return nil, engines.Corruptf(info.Name, st.Size(), "run is %d bytes, state records %d", st.Size(), info.Size)
	}
	meta, err := decodeRunMeta(info.Name, f, info.Size)
	if err != nil {
		f.Close()
		return nil, err
	}
	return newRun(d, info, seq, f, meta), nil
}

func newRun(d *DB, info engines.RunInfo, seq uint64, f engines.File, meta *runMeta) *run {
	r := &run{db: d, info: info, seq: seq, f: f, fileID: cache.NewFileID(), meta: meta}
	r.refs.Store(1)
	d.indexBytes.Add(meta.memoryUsage())
	return r
}

func (r *run) ref() { r.refs.Add(1) }

// unref drops a reference; the last one closes the file and, for a dead run,
// deletes it.
func (r *run) unref() {
	n := r.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("lsm: run reference count below zero: " + r.info.Name)
	}
	r.db.indexBytes.Add(-r.meta.memoryUsage())
	_ = r.f.Close()
	// A dead run still pinned when Close began stays on disk (the pin was
	// never released); the next Open removes it as a leftover.
	if r.obsolete.Load() && !r.db.closed.Load() {
		r.db.retire(r.info.Name)
	}
}

// get looks key up: filter, fences, then one block through the cache.
func (r *run) get(key []byte, h uint64) (kind byte, value []byte, found bool, err error) {
	m := r.meta
	if !m.filter.mayContain(h) {
		return 0, nil, false, nil
	}
	if bytes.Compare(key, m.fences.lastKey) > 0 {
		return 0, nil, false, nil
	}
	i := m.fences.search(key)
	if i < 0 {
		return 0, nil, false, nil
	}
	block, err := r.block(i)
	if err != nil {
		return 0, nil, false, err
	}
	kind, value, found = searchBlock(block, key)
	return kind, value, found, nil
}

// block returns block i, from the cache or read from disk and checked.
func (r *run) block(i int) ([]byte, error) {
	off, end, _ := r.meta.blockBounds(i)
	if b, ok := r.db.cache.Get(r.fileID, off); ok {
		return b, nil
	}
	buf := make([]byte, end-off)
	if _, err := r.f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("lsm: read block at %d of %s: %w", off, r.info.Name, err)
	}
	if err := checkBlock(r.info.Name, r.meta, i, off, buf); err != nil {
		return nil, err
	}
	r.db.cache.Set(r.fileID, off, buf)
	return buf, nil
}

// runIter reads a run's records in order, sequentially, checking every
// record's checksum and the key order. Key and value stay valid until the
// next call to next.
type runIter struct {
	r       *run
	br      *bufio.Reader
	off     int64
	n       uint64
	buf     []byte
	prevKey []byte
	rec     engines.Record
	err     error
}

func newRunIter(r *run) *runIter {
	sr := io.NewSectionReader(r.f, 0, r.meta.dataLen)
	return &runIter{r: r, br: bufio.NewReaderSize(sr, 256<<10)}
}

// next advances to the next record. It returns false at the end or on an
// error (see err).
func (it *runIter) next() bool {
	if it.err != nil {
		return false
	}
	m, name := it.r.meta, it.r.info.Name
	if it.n == m.recordCount {
		if it.off != m.dataLen {
			it.err = engines.Corruptf(name, it.off, "%d records end before the data section's end at %d", m.recordCount, m.dataLen)
		}
		return false
	}
	if cap(it.buf) < engines.RecordHeaderSize {
		it.buf = make([]byte, 0, 4096)
	}
	hdr := it.buf[:engines.RecordHeaderSize]
	if it.off+engines.RecordHeaderSize > m.dataLen {
		it.err = engines.Corruptf(name, it.off, "record header runs past the data section")
		return false
	}
	if _, err := io.ReadFull(it.br, hdr); err != nil {
		it.err = fmt.Errorf("lsm: read %s at %d: %w", name, it.off, err)
		return false
	}
	_, kl, vl, bad, _ := engines.DecodeRecordHeader(hdr)
	size := int64(engines.RecordSize(kl, vl))
	if bad != "" || it.off+size > m.dataLen {
		if bad == "" {
			bad = "record runs past the data section"
		}
		it.err = engines.Corruptf(name, it.off, "%s", bad)
		return false
	}
	if int64(cap(it.buf)) < size {
		nb := make([]byte, size)
		copy(nb, hdr)
		it.buf = nb
	}
	it.buf = it.buf[:size]
	if _, err := io.ReadFull(it.br, it.buf[engines.RecordHeaderSize:]); err != nil {
		it.err = fmt.Errorf("lsm: read %s at %d: %w", name, it.off, err)
		return false
	}
	rec, _, err := engines.DecodeRecord(it.buf, name, it.off)
	if err != nil {
		it.err = err
		return false
	}
	if it.n > 0 && bytes.Compare(it.prevKey, rec.Key) >= 0 {
		it.err = engines.Corruptf(name, it.off, "keys out of order")
		return false
	}
	it.prevKey = append(it.prevKey[:0], rec.Key...)
	it.rec = rec
	it.off += size
	it.n++
	return true
}
