package lsm

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
)

// maxFrozenMemtables is how many frozen memtables may wait for the flusher
// before writers with a full memtable wait.
const maxFrozenMemtables = 4

// DB is the LSM-tree engine. It implements engines.Engine; all methods are
// safe for concurrent use.
type DB struct {
	dir    string
	fs     engines.FS
	cache  *cache.Cache
	lis    engines.Listener
	log    *slog.Logger
	params Params
	namer  *engines.RunNamer

	closed atomic.Bool

	// mu is the write lock: memtable inserts and swaps.
	mu struct {
		sync.Mutex
		cond       *sync.Cond
		closed     bool
		mem        *memtable
		imm        []*memtable // frozen, oldest first
		frozenSeq  uint64      // memtables frozen so far (the newest's seq)
		flushedSeq uint64      // seq of the newest memtable flushed
		bgErr      error       // last background flush error, nil after a success
		writes     uint64      // Sets and Deletes accepted so far
	}

	// rsMu guards rs, the current read state. rs is replaced only with mu
	// held too.
	rsMu sync.RWMutex
	rs   *readState

	// flushMu serializes flushes (flusher, Seal, Close) so that memtables
	// become runs in freeze order.
	flushMu sync.Mutex

	// v guards the live levels, the pins and the CURRENT file.
	v struct {
		sync.Mutex
		levels  [][]*run // live runs by level, each newest first
		pins    map[uint64][]*run
		sealSeq uint64
		last    *sealed // the last Seal's checkpoint; its runs hold a reference
		closed  bool
	}

	indexBytes atomic.Int64 // fences and filters of open runs
	flushes    atomic.Int64 // memtables flushed since Open
	merges     atomic.Int64 // merges completed since Open

	flushCh chan struct{}
	mergeCh chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
}

var _ engines.Engine = (*DB)(nil)

// sealed is the content of the last checkpoint Seal returned.
type sealed struct {
	writes uint64 // the write count it covers
	runs   []*run
	infos  []engines.RunInfo
	state  []byte
}

// readState is an immutable view for readers: memtables and levels, with a
// reference on every run.
type readState struct {
	mem    *memtable
	imm    []*memtable // oldest first
	levels [][]*run
	refs   atomic.Int32
}

func (rs *readState) unref() {
	if rs == nil {
		return
	}
	if rs.refs.Add(-1) == 0 {
		for _, l := range rs.levels {
			for _, r := range l {
				r.unref()
			}
		}
	}
}

// Open opens (creating if needed) the LSM store in o.Dir, from o.Checkpoint
// if given, else from the CURRENT file in o.Dir. Zero fields of p take their
// defaults.
func Open(o engines.OpenOptions, p Params) (*DB, error) {
	o = o.EnsureDefaults()
	if o.Dir == "" {
		return nil, errors.New("lsm: open: OpenOptions.Dir is required")
	}
	def := DefaultParams()
	if p.MaxRunsPerLevel == 0 {
		p.MaxRunsPerLevel = def.MaxRunsPerLevel
	}
	if p.DensityFactor == 0 {
		p.DensityFactor = def.DensityFactor
	}
	if p.MemtableBytesLimit == 0 {
		p.MemtableBytesLimit = def.MemtableBytesLimit
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := o.FS.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lsm: open: %w", err)
	}
	d := &DB{
		dir: o.Dir, fs: o.FS, cache: o.Cache, lis: o.Listener, log: o.Logger, params: p,
		flushCh: make(chan struct{}, 1),
		mergeCh: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	d.mu.cond = sync.NewCond(&d.mu.Mutex)
	d.v.pins = map[uint64][]*run{}

	st, fresh, err := d.loadState(o.Checkpoint)
	if err != nil {
		return nil, err
	}
	d.namer = engines.NewRunNamer(st.nextSeq)
	levels := make([][]*run, len(st.levels))
	closeAll := func() {
		for _, l := range levels {
			for _, r := range l {
				r.unref()
			}
		}
	}
	for i, l := range st.levels {
		for _, info := range l {
			r, err := openRun(d, info)
			if err != nil {
				closeAll()
				return nil, err
			}
			levels[i] = append(levels[i], r)
		}
	}
	levels = trimLevels(levels)
	d.v.levels = levels
	// A checkpoint's state becomes CURRENT; a new directory gets its CURRENT
	// before any run is written (engines.ReadStateFile).
	if o.Checkpoint != nil || fresh {
		if err := d.writeCurrent(levels); err != nil {
			closeAll()
			return nil, fmt.Errorf("lsm: open: %w", err)
		}
	}
	live := map[string]bool{}
	for _, r := range st.runs() {
		live[r.Name] = true
	}
	engines.RemoveLeftovers(d.fs, d.dir, d.log, func(name string) bool { return live[name] }, runExt)
	d.mu.mem = newMemtable()
	d.installReadStateLocked(levels) // no other goroutine yet
	d.wg.Add(2)
	go d.flushLoop()
	go d.mergeLoop()
	d.signal(d.mergeCh) // levels may be over-full (a smaller max_runs_per_level)
	d.log.Debug("lsm: opened", "dir", d.dir, "runs", len(st.runs()), "levels", len(levels))
	return d, nil
}

// loadState returns the state to adopt: the checkpoint's, checked against
// its run list and the directory, or the CURRENT file's. In a new directory
// (no CURRENT and no other file, see engines.ReadStateFile) it is empty and
// fresh is true.
func (d *DB) loadState(cp *engines.Checkpoint) (st state, fresh bool, err error) {
	if cp == nil {
		b, found, err := engines.ReadStateFile(d.fs, d.dir, currentName)
		if err != nil {
			return state{}, false, fmt.Errorf("lsm: open: %w", err)
		}
		if !found {
			return state{nextSeq: 1}, true, nil
		}
		st, err = decodeState(currentName, b)
		return st, false, err
	}
	if cp.Kind != Kind {
		return state{}, false, fmt.Errorf("lsm: open checkpoint of kind %q: %w", cp.Kind, engines.ErrKindMismatch)
	}
	if err := engines.CheckRunsPresent(d.fs, d.dir, cp); err != nil {
		return state{}, false, fmt.Errorf("lsm: open checkpoint: %w", err)
	}
	const name = "checkpoint state"
	if st, err = decodeState(name, cp.State); err != nil {
		return state{}, false, err
	}
	want := map[string]engines.RunInfo{}
	for _, r := range st.runs() {
		want[r.Name] = r
	}
	if len(want) != len(cp.Runs) {
		return state{}, false, engines.Corruptf(name, engines.UnknownOffset, "state names %d runs, checkpoint lists %d", len(want), len(cp.Runs))
	}
	for _, r := range cp.Runs {
		if w, ok := want[r.Name]; !ok || w != r {
			return state{}, false, engines.Corruptf(name, engines.UnknownOffset, "checkpoint run %s (%d bytes, crc %08x) does not match the state", r.Name, r.Size, r.CRC32C)
		}
	}
	return st, false, nil
}

func trimLevels(levels [][]*run) [][]*run {
	for len(levels) > 0 && len(levels[len(levels)-1]) == 0 {
		levels = levels[:len(levels)-1]
	}
	return levels
}

func (d *DB) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// installReadStateLocked publishes a read state made of the current
// memtables and levels and returns the previous one, which the caller must
// unref after releasing its locks. mu must be held.
func (d *DB) installReadStateLocked(levels [][]*run) *readState {
	rs := &readState{mem: d.mu.mem, imm: slices.Clone(d.mu.imm), levels: levels}
	rs.refs.Store(1)
	for _, l := range levels {
		for _, r := range l {
			r.ref()
		}
	}
	d.rsMu.Lock()
	old := d.rs
	d.rs = rs
	d.rsMu.Unlock()
	return old
}

// acquire returns the current read state with a reference, or nil after
// Close.
func (d *DB) acquire() *readState {
	d.rsMu.RLock()
	rs := d.rs
	if rs != nil {
		rs.refs.Add(1)
	}
	d.rsMu.RUnlock()
	return rs
}

// freezeLocked turns the memtable into a frozen one and starts a fresh one.
// mu must be held; the returned read state must be unref'd after unlocking.
func (d *DB) freezeLocked() *readState {
	d.mu.frozenSeq++
	d.mu.mem.seq = d.mu.frozenSeq
	d.mu.imm = append(d.mu.imm, d.mu.mem)
	d.mu.mem = newMemtable()
	old := d.installReadStateLocked(d.rs.levels)
	d.signal(d.flushCh)
	return old
}

// Get returns the value stored under key.
func (d *DB) Get(key []byte) ([]byte, bool, error) {
	if err := engines.CheckKey(key); err != nil {
		return nil, false, err
	}
	rs := d.acquire()
	if rs == nil {
		return nil, false, engines.ErrClosed
	}
	defer rs.unref()
	if e, ok := rs.mem.get(key); ok {
		return entryResult(e.kind, e.value)
	}
	for i := len(rs.imm) - 1; i >= 0; i-- {
		if e, ok := rs.imm[i].get(key); ok {
			return entryResult(e.kind, e.value)
		}
	}
	h := keyHash(key)
	for _, l := range rs.levels {
		for _, r := range l {
			kind, v, found, err := r.get(key, h)
			if err != nil {
				return nil, false, err
			}
			if found {
				return entryResult(kind, v)
			}
		}
	}
	return nil, false, nil
}

func entryResult(kind byte, v []byte) ([]byte, bool, error) {
	if kind == engines.KindDelete {
		return nil, false, nil
	}
	out := make([]byte, len(v))
	copy(out, v)
	return out, true, nil
}

// Set stores value under key.
func (d *DB) Set(key, value []byte) error {
	if err := engines.CheckKV(key, value); err != nil {
		return err
	}
	return d.write(engines.KindSet, key, value)
}

// Delete writes a tombstone for key.
func (d *DB) Delete(key []byte) error {
	if err := engines.CheckKey(key); err != nil {
		return err
	}
	return d.write(engines.KindDelete, key, nil)
}

func (d *DB) write(kind byte, key, value []byte) error {
	limit := d.params.MemtableBytesLimit
	var old *readState
	d.mu.Lock()
	for {
		if d.mu.closed {
			d.mu.Unlock()
			return engines.ErrClosed
		}
		if d.mu.mem.size.Load() < limit {
			break
		}
		if len(d.mu.imm) < maxFrozenMemtables {
			old = d.freezeLocked()
			break
		}
		if err := d.mu.bgErr; err != nil {
			d.mu.Unlock()
			return fmt.Errorf("lsm: write stalled, flush failing: %w", err)
		}
		d.mu.cond.Wait()
	}
	m := d.mu.mem
	m.add(kind, key, value)
	d.mu.writes++
	if m.size.Load() >= limit && len(d.mu.imm) < maxFrozenMemtables && old == nil {
		old = d.freezeLocked()
	}
	d.mu.Unlock()
	old.unref()
	return nil
}

// Seal flushes all in-memory state to runs and returns the checkpoint of the
// live runs, pinned until Release. When nothing was written since the last
// Seal it returns that Seal's checkpoint again (with a new Seq), even if a
// merge has since replaced its runs: the DB keeps the runs of its last
// checkpoint pinned until a Seal after a write replaces it.
func (d *DB) Seal() (engines.Checkpoint, error) {
	var old *readState
	d.mu.Lock()
	if d.mu.closed {
		d.mu.Unlock()
		return engines.Checkpoint{}, engines.ErrClosed
	}
	if !d.mu.mem.empty() {
		old = d.freezeLocked()
	}
	target, writes := d.mu.frozenSeq, d.mu.writes
	d.mu.Unlock()
	old.unref()
	if err := d.flushUntil(target); err != nil {
		return engines.Checkpoint{}, fmt.Errorf("lsm: seal: %w", err)
	}
	d.v.Lock()
	if d.v.closed {
		d.v.Unlock()
		return engines.Checkpoint{}, engines.ErrClosed
	}
	var stale []*run
	src := d.v.last
	if src == nil || src.writes != writes {
		src = &sealed{writes: writes, state: encodeState(d.stateLocked(d.v.levels))}
		for _, l := range d.v.levels {
			for _, r := range l {
				r.ref()
				src.runs = append(src.runs, r)
				src.infos = append(src.infos, r.info)
			}
		}
		switch {
		case d.v.last == nil:
			d.v.last = src
		case d.v.last.writes < writes:
			stale = d.v.last.runs
			d.v.last = src
		default:
			stale = src.runs // a concurrent Seal that saw more writes got here first
		}
	}
	d.v.sealSeq++
	seq := d.v.sealSeq
	pinned := slices.Clone(src.runs)
	for _, r := range pinned {
		r.ref()
	}
	d.v.pins[seq] = pinned
	cp := engines.Checkpoint{Kind: Kind, Runs: slices.Clone(src.infos), State: bytes.Clone(src.state), Seq: seq}
	d.v.Unlock()
	for _, r := range stale {
		r.unref()
	}
	return cp, nil
}

// Release unpins the runs of a checkpoint returned by Seal.
func (d *DB) Release(cp engines.Checkpoint) {
	d.v.Lock()
	pinned, ok := d.v.pins[cp.Seq]
	delete(d.v.pins, cp.Seq)
	d.v.Unlock()
	if ok {
		for _, r := range pinned {
			r.unref()
		}
	}
}

// MemoryUsage reports the bytes of memtables, fences and filters.
func (d *DB) MemoryUsage() int64 {
	rs := d.acquire()
	if rs == nil {
		return 0
	}
	defer rs.unref()
	n := rs.mem.memoryUsage()
	for _, m := range rs.imm {
		n += m.memoryUsage()
	}
	return n + d.indexBytes.Load()
}

// Close flushes the memtables, stops background work and closes the runs.
func (d *DB) Close() error {
	var old *readState
	d.mu.Lock()
	if d.mu.closed {
		d.mu.Unlock()
		return engines.ErrClosed
	}
	d.mu.closed = true
	d.closed.Store(true)
	if !d.mu.mem.empty() {
		old = d.freezeLocked()
	}
	d.mu.cond.Broadcast()
	d.mu.Unlock()
	old.unref()

	close(d.stop)
	d.wg.Wait()

	d.flushMu.Lock()
	var err error
	for {
		did, ferr := d.flushOldest()
		if ferr != nil {
			err = fmt.Errorf("lsm: close: %w", ferr)
			break
		}
		if !did {
			break
		}
	}
	d.v.Lock()
	d.v.closed = true
	pins := d.v.pins
	d.v.pins = nil
	levels := d.v.levels
	d.v.levels = nil
	if d.v.last != nil {
		pins[0] = d.v.last.runs // seal seqs start at 1
		d.v.last = nil
	}
	d.v.Unlock()
	d.flushMu.Unlock()

	d.mu.Lock()
	d.rsMu.Lock()
	old = d.rs
	d.rs = nil
	d.rsMu.Unlock()
	d.mu.Unlock()
	old.unref()
	for _, pinned := range pins {
		for _, r := range pinned {
			r.unref()
		}
	}
	for _, l := range levels {
		for _, r := range l {
			r.unref()
		}
	}
	return err
}

// stateLocked returns the state for levels; v must be held.
func (d *DB) stateLocked(levels [][]*run) state {
	st := state{nextSeq: d.namer.NextSeq(), levels: make([][]engines.RunInfo, len(levels))}
	for i, l := range levels {
		st.levels[i] = make([]engines.RunInfo, len(l))
		for j, r := range l {
			st.levels[i][j] = r.info
		}
	}
	return st
}

// writeCurrent rewrites CURRENT for levels; v must be held (or the DB not
// yet shared).
func (d *DB) writeCurrent(levels [][]*run) error {
	return engines.WriteFileAtomic(d.fs, d.dir, currentName, encodeState(d.stateLocked(levels)))
}

// retire deletes a dead run's file and tells the listener.
func (d *DB) retire(name string) {
	if err := d.fs.Remove(filepath.Join(d.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("lsm: remove dead run", "run", name, "err", err)
		return
	}
	d.log.Debug("lsm: run retired", "run", name)
	if d.lis.RunRetired != nil {
		d.lis.RunRetired(name)
	}
}

// buildRun writes a run from the records fill adds. It returns nil (and no
// file) when fill adds nothing.
func (d *DB) buildRun(fill func(b *runBuilder) error) (*run, error) {
	name := d.namer.Next(runExt)
	seq, _, _, _ := engines.ParseRunName(name)
	w, err := engines.CreateRun(d.fs, d.dir, name)
	if err != nil {
		return nil, err
	}
	b := newRunBuilder(w, d.params.DensityFactor)
	if err := fill(b); err != nil {
		w.Abort()
		return nil, err
	}
	if b.count == 0 {
		w.Abort()
		return nil, nil
	}
	meta, err := b.finish()
	if err != nil {
		w.Abort()
		return nil, err
	}
	info, err := w.Finish()
	if err != nil {
		return nil, err
	}
	f, err := engines.Open(d.fs, filepath.Join(d.dir, name))
	if err != nil {
		_ = d.fs.Remove(filepath.Join(d.dir, name))
		return nil, fmt.Errorf("open run %s: %w", name, err)
	}
	return newRun(d, info, seq, f, meta), nil
}

// discard drops a freshly built run that never became live.
func (d *DB) discard(r *run) {
	r.obsolete.Store(true)
	r.unref()
}

// abandon drops a run whose publication in CURRENT failed, keeping its file:
// WriteFileAtomic can fail after its rename took effect (the directory fsync
// failed), so CURRENT may name the run. The next Open removes it if CURRENT
// does not.
func (d *DB) abandon(r *run) { r.unref() }

// flushOldest writes the oldest frozen memtable as a level-0 run and makes
// it live. flushMu must be held. did is false when nothing was frozen.
func (d *DB) flushOldest() (did bool, err error) {
	d.mu.Lock()
	if len(d.mu.imm) == 0 {
		d.mu.Unlock()
		return false, nil
	}
	mt := d.mu.imm[0]
	d.mu.Unlock()

	r, err := d.buildRun(func(b *runBuilder) error {
		for n := mt.first(); n != nil; n = n.tower[0].Load() {
			e := n.val.Load()
			if err := b.add(e.kind, n.key, e.value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("flush memtable: %w", err)
	}
	d.v.Lock()
	if d.v.closed { // a Seal that lost the race with Close
		d.v.Unlock()
		d.discard(r)
		return false, engines.ErrClosed
	}
	levels := slices.Clone(d.v.levels)
	if len(levels) == 0 {
		levels = append(levels, nil)
	}
	levels[0] = append([]*run{r}, levels[0]...)
	if err := d.writeCurrent(levels); err != nil {
		d.v.Unlock()
		d.abandon(r)
		return false, fmt.Errorf("flush memtable: %w", err)
	}
	if d.lis.RunSealed != nil {
		d.lis.RunSealed(r.info)
	}
	d.v.levels = levels
	d.mu.Lock()
	d.mu.imm = d.mu.imm[1:]
	d.mu.flushedSeq = mt.seq
	d.mu.bgErr = nil
	old := d.installReadStateLocked(levels)
	d.mu.cond.Broadcast()
	d.mu.Unlock()
	d.v.Unlock()
	old.unref()
	d.flushes.Add(1)
	d.log.Debug("lsm: flushed memtable", "run", r.info.Name, "bytes", r.info.Size, "records", r.meta.recordCount)
	d.signal(d.mergeCh)
	return true, nil
}

// flushUntil flushes frozen memtables until the one with seq target is
// flushed.
func (d *DB) flushUntil(target uint64) error {
	for {
		d.mu.Lock()
		done := d.mu.flushedSeq >= target
		d.mu.Unlock()
		if done {
			return nil
		}
		d.flushMu.Lock()
		_, err := d.flushOldest()
		d.flushMu.Unlock()
		if err != nil {
			return err
		}
	}
}

// sameRuns reports whether a and b hold the same run pointers in order.
func sameRuns(a, b []*run) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// levelInfos returns the live runs by level (for tests and debugging).
func (d *DB) levelInfos() [][]engines.RunInfo {
	d.v.Lock()
	defer d.v.Unlock()
	return d.stateLocked(d.v.levels).levels
}
