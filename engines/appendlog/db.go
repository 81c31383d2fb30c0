package appendlog

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"sync"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
)

// writeBufferSize is the size of the write buffer in front of the active log;
// it is at most an eighth of the threshold, so that most of a log reaches its
// file before it is sealed.
const writeBufferSize = 64 << 10

// loc is an index entry: the newest record of a key, a value or a tombstone.
// Deleted keys keep a tombstone entry until a merge that includes the oldest
// data purges it, so that merges know whether (and where) a key was deleted.
type loc struct {
	off uint64 // offset of the record in its run
	run uint32 // run id (DB.runs)
	n   uint32 // encoded record size, tombBit set for a tombstone
}

// tombBit marks a tombstone in loc.n (records are far below 2 GiB).
const tombBit = 1 << 31

func mkLoc(kind byte, off uint64, run uint32, n int) loc {
	l := loc{off: off, run: run, n: uint32(n)}
	if kind == engines.KindDelete {
		l.n |= tombBit
	}
	return l
}

func (l loc) tomb() bool   { return l.n&tombBit != 0 }
func (l loc) size() uint32 { return l.n &^ tombBit }

// run is an open run file: the active log, a sealed log or a merge output.
type run struct {
	id     uint32
	seq    uint64
	name   string // file name; activeLogName while active
	hint   string // hint file name, once durable
	f      engines.File
	fileID uint64 // block-cache id of f

	// Written under DB.mu by writers while active; frozen afterwards.
	size    int64  // body bytes, the write buffer included
	flushed int64  // body bytes in the file
	buf     []byte // write buffer (active only)
	count   uint64 // records in the body
	crc     uint32 // CRC-32C of the flushed body

	// Guarded by DB.mu.
	info, hintInfo engines.RunInfo
	pins           int  // one for the live set, one per unreleased checkpoint
	durable        bool // footer, fsync and hint written
	live           bool // in DB.levels
}

// DB is an AppendLog engine. It implements engines.Engine.
type DB struct {
	o      engines.OpenOptions
	p      Params
	namer  *engines.RunNamer
	wbSize int

	mu       sync.RWMutex
	closed   bool
	failed   error // sticky write-path failure
	mergeErr error // first background merge failure
	merging  bool  // a merge is running (tests wait for it)
	idx      map[string]uint32
	slots    []loc
	free     []uint32
	keyBytes int64
	runs     []*run   // by id; nil once retired
	levels   [][]*run // levels[0] newest; oldest first within a level
	active   *run
	pending  []*run // swapped out, not yet durable, oldest first
	pinned   map[uint64][]*run
	sealSeq  uint64
	version  uint64 // bumped whenever the durable level structure changes

	sealMu         sync.Mutex // serializes persisting and CURRENT writes
	currentVersion uint64     // version last written to CURRENT; under sealMu

	kickSeal  chan struct{}
	kickMerge chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
}

var _ engines.Engine = (*DB)(nil)

func (db *DB) path(name string) string { return filepath.Join(db.o.Dir, name) }

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// newRunLocked registers a run object for f and returns it.
func (db *DB) newRunLocked(name string, f engines.File) *run {
	r := &run{id: uint32(len(db.runs)), name: name, f: f, fileID: cache.NewFileID()}
	db.runs = append(db.runs, r)
	return r
}

func (db *DB) usableLocked() error {
	if db.closed {
		return engines.ErrClosed
	}
	if db.failed != nil {
		return fmt.Errorf("appendlog: refused after an earlier failure: %w", db.failed)
	}
	return nil
}

func (db *DB) failLocked(err error) error {
	if db.failed == nil {
		db.failed = err
		db.o.Logger.Error("appendlog: write path failed; writes refused until reopen", "dir", db.o.Dir, "err", err)
	}
	return err
}

// Get returns the value of key. Records read from files are checked against
// their checksum and the key.
func (db *DB) Get(key []byte) ([]byte, bool, error) {
	if err := engines.CheckKey(key); err != nil {
		return nil, false, err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, false, engines.ErrClosed
	}
	slot, ok := db.idx[string(key)]
	if !ok {
		return nil, false, nil
	}
	l := db.slots[slot]
	if l.tomb() {
		return nil, false, nil
	}
	r := db.runs[l.run]
	if r == db.active && int64(l.off) >= r.flushed {
		b := int(int64(l.off) - r.flushed)
		rec := r.buf[b : b+int(l.n)]
		return bytes.Clone(rec[engines.RecordHeaderSize+len(key):]), true, nil
	}
	if v, ok := db.o.Cache.Get(r.fileID, int64(l.off)); ok {
		return append(make([]byte, 0, len(v)), v...), true, nil
	}
	v, err := readValue(r, l, key)
	if err != nil {
		return nil, false, err
	}
	db.o.Cache.Set(r.fileID, int64(l.off), bytes.Clone(v))
	return v, true, nil
}

// readValue reads and checks the record at l in r and returns its value.
func readValue(r *run, l loc, key []byte) ([]byte, error) {
	buf := make([]byte, l.n)
	if n, err := r.f.ReadAt(buf, int64(l.off)); n < len(buf) {
		if err == nil || err == io.EOF {
			return nil, engines.Corruptf(r.name, int64(l.off), "record of %d bytes runs past the end of the file", l.n)
		}
		return nil, fmt.Errorf("appendlog: read %s at %d: %w", r.name, l.off, err)
	}
	rec, n, err := engines.DecodeRecord(buf, r.name, int64(l.off))
	if err == engines.ErrTruncated {
		return nil, engines.Corruptf(r.name, int64(l.off), "record longer than its index entry (%d bytes)", l.n)
	}
	if err != nil {
		return nil, err
	}
	if n != len(buf) || rec.Kind != engines.KindSet || !bytes.Equal(rec.Key, key) {
		return nil, engines.Corruptf(r.name, int64(l.off), "record does not match its index entry")
	}
	return rec.Value, nil
}

// Set stores value under key.
func (db *DB) Set(key, value []byte) error {
	if err := engines.CheckKV(key, value); err != nil {
		return err
	}
	return db.write(engines.KindSet, key, value)
}

// Delete writes a tombstone for key. Deleting an absent key writes nothing.
func (db *DB) Delete(key []byte) error {
	if err := engines.CheckKey(key); err != nil {
		return err
	}
	return db.write(engines.KindDelete, key, nil)
}

func (db *DB) write(kind byte, key, value []byte) error {
	db.mu.Lock()
	if err := db.usableLocked(); err != nil {
		db.mu.Unlock()
		return err
	}
	slot, exists := db.idx[string(key)]
	if kind == engines.KindDelete && (!exists || db.slots[slot].tomb()) {
		// Absent or already deleted: nothing to shadow.
		db.mu.Unlock()
		return nil
	}
	n := engines.RecordSize(len(key), len(value))
	swapped := false
	if a := db.active; a.size > 0 && a.size+int64(n) > db.p.Threshold {
		if err := db.swapLocked(); err != nil {
			db.mu.Unlock()
			return err
		}
		swapped = true
	}
	a := db.active
	off, err := db.appendLocked(a, kind, key, value, n)
	if err != nil {
		db.mu.Unlock()
		return err
	}
	l := mkLoc(kind, uint64(off), a.id, n)
	if exists {
		db.slots[slot] = l
	} else {
		db.insertLocked(key, l)
	}
	db.mu.Unlock()
	if swapped {
		kick(db.kickSeal)
	}
	return nil
}

func (db *DB) insertLocked(key []byte, l loc) {
	var slot uint32
	if n := len(db.free); n > 0 {
		slot = db.free[n-1]
		db.free = db.free[:n-1]
		db.slots[slot] = l
	} else {
		slot = uint32(len(db.slots))
		db.slots = append(db.slots, l)
	}
	db.idx[string(key)] = slot
	db.keyBytes += int64(roundUp8(len(key)))
}

// purgeLocked removes the entry of key if it is still l.
func (db *DB) purgeLocked(key string, l loc) {
	slot, ok := db.idx[key]
	if !ok || db.slots[slot] != l {
		return
	}
	delete(db.idx, key)
	db.slots[slot] = loc{}
	db.free = append(db.free, slot)
	db.keyBytes -= int64(roundUp8(len(key)))
}

// applyLocked applies a record or hint entry (in log order) during Open.
func (db *DB) applyLocked(key []byte, l loc) {
	if slot, ok := db.idx[string(key)]; ok {
		db.slots[slot] = l
	} else {
		db.insertLocked(key, l)
	}
}

func roundUp8(n int) int { return (n + 7) &^ 7 }

// appendLocked appends a record to the active log a and returns its offset.
func (db *DB) appendLocked(a *run, kind byte, key, value []byte, n int) (int64, error) {
	if len(a.buf)+n > cap(a.buf) {
		if err := db.flushLocked(a); err != nil {
			return 0, err
		}
		if n > cap(a.buf) {
			rec := engines.AppendRecord(make([]byte, 0, n), kind, key, value)
			if _, err := a.f.Write(rec); err != nil {
				return 0, db.failLocked(fmt.Errorf("appendlog: append to %s: %w", activeLogName, err))
			}
			off := a.size
			a.crc = crc32.Update(a.crc, engines.CastagnoliTable, rec)
			a.size += int64(n)
			a.flushed += int64(n)
			a.count++
			return off, nil
		}
	}
	off := a.size
	b := len(a.buf)
	a.buf = a.buf[:b+n]
	engines.PutRecord(a.buf[b:], kind, key, value)
	a.size += int64(n)
	a.count++
	return off, nil
}

// flushLocked writes the write buffer of a to its file.
func (db *DB) flushLocked(a *run) error {
	if len(a.buf) == 0 {
		return nil
	}
	if _, err := a.f.Write(a.buf); err != nil {
		return db.failLocked(fmt.Errorf("appendlog: append to %s: %w", activeLogName, err))
	}
	a.crc = crc32.Update(a.crc, engines.CastagnoliTable, a.buf)
	a.flushed += int64(len(a.buf))
	a.buf = a.buf[:0]
	return nil
}

// swapLocked turns the active log into a pending sealed log and starts a new
// one: a write of the buffer, a rename and a file creation, no fsync.
func (db *DB) swapLocked() error {
	a := db.active
	if err := db.flushLocked(a); err != nil {
		return err
	}
	name := db.namer.Next(extSealed)
	seq, _, _, _ := engines.ParseRunName(name)
	if err := db.o.FS.Rename(db.path(activeLogName), db.path(name)); err != nil {
		return fmt.Errorf("appendlog: seal %s as %s: %w", activeLogName, name, err)
	}
	f, err := db.o.FS.OpenFile(db.path(activeLogName), osCreateRW|osTrunc, 0o644)
	if err != nil {
		return db.failLocked(fmt.Errorf("appendlog: create %s: %w", activeLogName, err))
	}
	buf := a.buf
	a.buf = nil
	a.name, a.seq, a.live, a.pins = name, seq, true, 1
	db.levels[0] = append(db.levels[0], a)
	db.pending = append(db.pending, a)
	na := db.newRunLocked(activeLogName, f)
	na.buf = buf[:0]
	db.active = na
	return nil
}

// persistPending makes every pending sealed log durable (footer, fsync, hint
// file), in order, then rewrites CURRENT if the durable state changed.
func (db *DB) persistPending() error {
	db.sealMu.Lock()
	defer db.sealMu.Unlock()
	sealed := 0
	for {
		db.mu.RLock()
		var r *run
		if len(db.pending) > 0 {
			r = db.pending[0]
		}
		failed := db.failed
		db.mu.RUnlock()
		if failed != nil {
			return fmt.Errorf("appendlog: refused after an earlier failure: %w", failed)
		}
		if r == nil {
			break
		}
		info, hint, hintInfo, err := db.sealRun(r)
		db.mu.Lock()
		if err != nil {
			err = db.failLocked(err)
			db.mu.Unlock()
			return err
		}
		r.info, r.hint, r.hintInfo, r.durable = info, hint, hintInfo, true
		db.pending = db.pending[1:]
		db.version++
		db.mu.Unlock()
		db.sealedEvent(info, hintInfo)
		sealed++
	}
	if err := db.writeCurrentLocked(false); err != nil {
		return err
	}
	if sealed > 0 {
		kick(db.kickMerge)
	}
	return nil
}

func (db *DB) sealedEvent(infos ...engines.RunInfo) {
	if db.o.Listener.RunSealed != nil {
		for _, i := range infos {
			db.o.Listener.RunSealed(i)
		}
	}
}

// sealRun appends the footer to the swapped-out log r, fsyncs it and writes
// its hint file (which fsyncs the directory). Writers no longer touch r.
func (db *DB) sealRun(r *run) (info engines.RunInfo, hint string, hintInfo engines.RunInfo, err error) {
	fb := appendFooter(nil, footer{BodyLen: uint64(r.size), Count: r.count, BodyCRC: r.crc}, runMagic)
	// The rename of the log into its run name becomes durable with the
	// directory fsync that WriteRun does for the hint file below.
	if _, err = r.f.Write(fb); err == nil {
		err = r.f.Sync()
	}
	if err != nil {
		return info, "", hintInfo, fmt.Errorf("appendlog: seal %s: %w", r.name, err)
	}
	info = engines.RunInfo{Name: r.name, Size: r.size + footerSize, CRC32C: crc32.Update(r.crc, engines.CastagnoliTable, fb)}
	// A record superseded by a later one of the same run needs no hint
	// entry: the later one has one. Records superseded by newer, not yet
	// durable records keep theirs (see doc.go).
	var hb hintWriter
	if _, err = scanRecords(r.f, r.name, 0, r.size, true, func(off int64, raw []byte, rec engines.Record) error {
		l := mkLoc(rec.Kind, uint64(off), r.id, len(raw))
		db.mu.RLock()
		slot, ok := db.idx[string(rec.Key)]
		var e loc
		if ok {
			e = db.slots[slot]
		}
		db.mu.RUnlock()
		if ok && e != l && e.run == r.id {
			return nil
		}
		hb.add(rec.Kind, rec.Key, l.off, l.size())
		return nil
	}); err != nil {
		return info, "", hintInfo, fmt.Errorf("appendlog: index %s: %w", r.name, err)
	}
	hint = db.namer.Next(extHint)
	hintInfo, err = engines.WriteRun(db.o.FS, db.o.Dir, hint, hb.encode(r.crc))
	if err != nil {
		return info, "", hintInfo, fmt.Errorf("appendlog: write hint of %s: %w", r.name, err)
	}
	return info, hint, hintInfo, nil
}

// stateLocked returns the durable state. With forCurrent it carries the seal
// floor for CURRENT.
func (db *DB) stateLocked(forCurrent bool) state {
	st := state{NextSeq: db.namer.NextSeq(), Levels: make([][]runRef, 0, len(db.levels))}
	for _, lvl := range db.levels {
		refs := make([]runRef, 0, len(lvl))
		for _, r := range lvl {
			if r.durable {
				refs = append(refs, runRef{Run: r.name, Hint: r.hint})
			}
		}
		st.Levels = append(st.Levels, refs)
	}
	// Trailing empty levels carry no information.
	for len(st.Levels) > 0 && len(st.Levels[len(st.Levels)-1]) == 0 {
		st.Levels = st.Levels[:len(st.Levels)-1]
	}
	if forCurrent {
		st.SealFloor = st.NextSeq
		if len(db.pending) > 0 {
			st.SealFloor = db.pending[0].seq
		}
	}
	return st
}

// writeCurrentLocked rewrites CURRENT if the durable state changed since it
// was last written (or always, with force). sealMu must be held.
func (db *DB) writeCurrentLocked(force bool) error {
	db.mu.RLock()
	ver := db.version
	if !force && ver == db.currentVersion {
		db.mu.RUnlock()
		return nil
	}
	st := db.stateLocked(true)
	db.mu.RUnlock()
	if err := engines.WriteFileAtomic(db.o.FS, db.o.Dir, currentName, encodeCurrent(st)); err != nil {
		return fmt.Errorf("appendlog: %w", err)
	}
	db.currentVersion = ver
	return nil
}

// Seal seals the active log (if anything was written since the last seal),
// waits until every sealed log is durable and returns the checkpoint of the
// durable state. Its runs stay on disk until Release.
func (db *DB) Seal() (engines.Checkpoint, error) {
	db.mu.Lock()
	if err := db.usableLocked(); err != nil {
		db.mu.Unlock()
		return engines.Checkpoint{}, err
	}
	if db.active.size > 0 {
		if err := db.swapLocked(); err != nil {
			db.mu.Unlock()
			return engines.Checkpoint{}, err
		}
	}
	db.mu.Unlock()
	if err := db.persistPending(); err != nil {
		return engines.Checkpoint{}, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return engines.Checkpoint{}, engines.ErrClosed
	}
	st := db.stateLocked(false)
	cp := engines.Checkpoint{Kind: Kind, Runs: []engines.RunInfo{}, State: encodeState(st)}
	var pins []*run
	for l := len(db.levels) - 1; l >= 0; l-- {
		for _, r := range db.levels[l] {
			if r.durable {
				cp.Runs = append(cp.Runs, r.info, r.hintInfo)
				r.pins++
				pins = append(pins, r)
			}
		}
	}
	db.sealSeq++
	cp.Seq = db.sealSeq
	db.pinned[cp.Seq] = pins
	return cp, nil
}

// Release unpins the runs of a checkpoint returned by Seal. Releasing twice,
// or after Close, does nothing.
func (db *DB) Release(cp engines.Checkpoint) {
	db.mu.Lock()
	rs, ok := db.pinned[cp.Seq]
	if !ok || db.closed {
		db.mu.Unlock()
		return
	}
	delete(db.pinned, cp.Seq)
	dead := db.unpinLocked(rs)
	db.mu.Unlock()
	db.removeRuns(dead)
}

// unpinLocked drops one pin of each run and closes the runs that are neither
// live nor pinned any more; the caller removes their files.
func (db *DB) unpinLocked(rs []*run) []*run {
	var dead []*run
	for _, r := range rs {
		r.pins--
		if r.pins == 0 && !r.live {
			_ = r.f.Close()
			db.runs[r.id] = nil
			dead = append(dead, r)
		}
	}
	return dead
}

// removeRuns deletes the files of dead runs and reports them retired.
func (db *DB) removeRuns(dead []*run) {
	for _, r := range dead {
		for _, name := range []string{r.name, r.hint} {
			if err := db.o.FS.Remove(db.path(name)); err != nil {
				db.o.Logger.Warn("appendlog: remove retired run", "run", name, "err", err)
				continue
			}
			if db.o.Listener.RunRetired != nil {
				db.o.Listener.RunRetired(name)
			}
		}
	}
}

// MemoryUsage estimates the bytes held by the index, the write buffer and the
// run table.
func (db *DB) MemoryUsage() int64 {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return 0
	}
	// A map entry holds a string header (16 B) and a slot number (4 B), plus
	// the map's control bytes and load factor (~8 B per entry).
	m := int64(len(db.idx))*(16+4+8) + db.keyBytes
	m += int64(cap(db.slots))*16 + int64(cap(db.free))*4
	m += int64(len(db.runs))*8 + int64(len(db.runs)-countNil(db.runs))*200
	if db.active != nil {
		m += int64(cap(db.active.buf))
	}
	return m
}

func countNil(rs []*run) int {
	n := 0
	for _, r := range rs {
		if r == nil {
			n++
		}
	}
	return n
}

// Close seals what was written, makes it durable, stops the background
// goroutines and closes every file. Methods called afterwards return
// engines.ErrClosed.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return engines.ErrClosed
	}
	var err error
	if db.failed == nil && db.active.size > 0 {
		err = db.swapLocked()
	}
	db.closed = true
	db.mu.Unlock()

	close(db.stop)
	db.wg.Wait()
	if err == nil {
		err = db.persistPending()
	}

	db.mu.Lock()
	defer db.mu.Unlock()
	for _, r := range db.runs {
		if r != nil && r != db.active {
			_ = r.f.Close()
		}
	}
	a := db.active
	if cerr := a.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("appendlog: close %s: %w", activeLogName, cerr)
	}
	if err == nil && a.size == 0 {
		if rerr := db.o.FS.Remove(db.path(activeLogName)); rerr != nil {
			err = fmt.Errorf("appendlog: remove empty %s: %w", activeLogName, rerr)
		}
	}
	if err == nil && db.mergeErr != nil {
		err = fmt.Errorf("appendlog: background merge failed: %w", db.mergeErr)
	}
	db.runs, db.levels, db.pending, db.pinned, db.idx = nil, nil, nil, nil, nil
	return err
}

// errStopped ends a merge interrupted by Close.
var errStopped = errors.New("appendlog: merge stopped by close")
