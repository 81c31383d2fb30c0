package hybridlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sort"
	"sync"

	"github.com/tierkv/tierkv/engines"
)

// minRingLen is the initial size of the ring buffer; it grows by doubling up
// to mem_segment_len as the window fills.
const minRingLen = 64 << 10

// DB is a HybridLog engine. It implements engines.Engine; all methods are
// safe for concurrent use.
type DB struct {
	o        engines.OpenOptions
	p        Params
	limit    uint64 // mem_segment_len
	mutable  uint64 // mem_segment_len - ro_lag_interval - flush_interval
	flushLen uint64 // flush_interval
	log      *slog.Logger

	// mu guards the index, the ring buffer, the region boundaries and the
	// lookup tables of runs. Writers hold it exclusively, Get shares it.
	mu struct {
		sync.RWMutex
		cond     *sync.Cond // on mu: flushed advanced, an error, or Close
		closed   bool
		bgErr    error // sticky error of a flush or merge
		idx      *index
		buf      []byte // ring buffer: address a lives at buf[a%len(buf)]
		scratch  []byte // for records that wrap around the ring's end
		head     uint64 // lowest address held in buf
		flushed  uint64 // addresses below are in log runs named by CURRENT
		readOnly uint64 // records starting at or above are updated in place
		tail     uint64 // next address to append at
		waiters  int    // writers waiting for a flush to make room
		slots    map[uint32]*run
		logRuns  []*run // log runs sorted by start
		nextSlot uint32
	}
	readers sync.WaitGroup // Gets reading run files

	// flushMu serializes flushes (the background flusher, Seal, Close).
	flushMu sync.Mutex

	// runs guards the live run set, CURRENT and the pins.
	runs struct {
		sync.Mutex
		levels   [][]*run // levels[0] newest; each level oldest run first
		nextAddr uint64   // the state's next address (end of the last durable flush)
		pins     map[uint64][]*run
		sealSeq  uint64
	}
	namer *engines.RunNamer // safe for concurrent use

	// files guards the set of open run files.
	files struct {
		sync.Mutex
		open map[*run]struct{} // runs whose file is open
		done bool              // Close closed them
	}

	// merges guards the merge requests the background merger serves.
	merges struct {
		sync.Mutex
		cond    *sync.Cond // on merges: done advanced or the merger stopped
		req     uint64     // merge requests made
		done    uint64     // requests served (levels under their limit, or a merge failed)
		stopped bool       // Close stopped the merger
	}

	flushKick chan struct{}
	mergeKick chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
}

var _ engines.Engine = (*DB)(nil)

// Open opens (or creates) the engine in o.Dir. With o.Checkpoint it adopts
// that checkpoint; otherwise it recovers the state recorded in the private
// CURRENT file (none in a new directory: an empty store; see
// engines.ReadStateFile).
func Open(o engines.OpenOptions, p Params) (*DB, error) {
	o = o.EnsureDefaults()
	if o.Dir == "" {
		return nil, errors.New("hybridlog: open: OpenOptions.Dir is required")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := o.FS.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("hybridlog: create dir: %w", err)
	}
	var (
		cp       engines.Checkpoint
		st       state
		rewrite  bool
		fromFile bool
	)
	if o.Checkpoint != nil {
		cp = *o.Checkpoint
		if cp.Kind != Kind {
			return nil, fmt.Errorf("hybridlog: open checkpoint of kind %q: %w", cp.Kind, engines.ErrKindMismatch)
		}
		if err := engines.CheckRunsPresent(o.FS, o.Dir, &cp); err != nil {
			return nil, fmt.Errorf("hybridlog: open checkpoint: %w", err)
		}
		var err error
		if st, err = decodeState(cp.State, "checkpoint state", 0); err != nil {
			return nil, fmt.Errorf("hybridlog: open checkpoint: %w", err)
		}
		if err := checkRunsMatchState(cp, st); err != nil {
			return nil, fmt.Errorf("hybridlog: open checkpoint: %w", err)
		}
		rewrite = true
	} else {
		b, found, err := engines.ReadStateFile(o.FS, o.Dir, currentName)
		if err != nil {
			return nil, fmt.Errorf("hybridlog: open: %w", err)
		}
		if found {
			if cp, st, err = decodeCurrent(b, currentName); err != nil {
				return nil, fmt.Errorf("hybridlog: open: %w", err)
			}
			fromFile = true
		}
	}
	d := &DB{
		o: o, p: p, log: o.Logger.With("engine", Kind, "dir", o.Dir),
		limit:     uint64(p.MemSegmentLen),
		mutable:   uint64(p.mutableLen()),
		flushLen:  uint64(p.FlushInterval),
		namer:     engines.NewRunNamer(st.nextSeq),
		flushKick: make(chan struct{}, 1),
		mergeKick: make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	d.mu.cond = sync.NewCond(&d.mu.RWMutex)
	d.mu.slots = map[uint32]*run{}
	d.runs.nextAddr = st.nextAddr
	d.runs.pins = map[uint64][]*run{}
	d.files.open = map[*run]struct{}{}
	d.merges.cond = sync.NewCond(&d.merges.Mutex)
	if err := d.load(cp, st); err != nil {
		d.closeFiles()
		return nil, fmt.Errorf("hybridlog: open: %w", err)
	}
	// A checkpoint's state becomes CURRENT; a new directory gets its CURRENT
	// before any run is written (engines.ReadStateFile).
	if rewrite || !fromFile {
		if err := d.writeCurrentLocked(); err != nil {
			d.closeFiles()
			return nil, fmt.Errorf("hybridlog: open: %w", err)
		}
	}
	d.removeLeftovers()
	d.wg.Add(2)
	go d.flushLoop()
	go d.mergeLoop()
	for _, l := range d.runs.levels {
		if len(l) >= p.MaxRunsPerLevel {
			d.requestMerge()
			break
		}
	}
	return d, nil
}

// load opens every run of the state and builds the index from the hint
// files, oldest run first so that newer records win.
func (d *DB) load(cp engines.Checkpoint, st state) error {
	infos := map[string]engines.RunInfo{}
	for _, r := range cp.Runs {
		infos[r.Name] = r
	}
	var entries int
	for _, l := range st.levels {
		for _, name := range l {
			if sz := infos[hintName(name)].Size; sz > 0 {
				entries += int(sz / 24)
			}
		}
	}
	d.mu.idx = newIndex(entries)
	d.runs.levels = make([][]*run, len(st.levels))
	for li := len(st.levels) - 1; li >= 0; li-- {
		for _, name := range st.levels[li] {
			slot := d.mu.nextSlot
			d.mu.nextSlot++
			r, err := openRun(d.o.FS, d.o.Dir, infos[name], infos[hintName(name)], slot, func(r *run, e hintEntry) {
				p := r.loc(e.off)
				if e.kind == engines.KindDelete {
					p |= ptrTomb
				}
				d.mu.idx.set(e.key, p)
			})
			if err != nil {
				return err
			}
			r.refs.Store(1)
			d.files.open[r] = struct{}{}
			d.mu.slots[slot] = r
			if !r.merged {
				if r.start+r.dataLen > st.nextAddr {
					return engines.Corruptf(r.name, engines.UnknownOffset, "log run ends at address %d, beyond the state's next address %d", r.start+r.dataLen, st.nextAddr)
				}
				d.mu.logRuns = append(d.mu.logRuns, r)
			}
			d.runs.levels[li] = append(d.runs.levels[li], r)
		}
	}
	sort.Slice(d.mu.logRuns, func(i, j int) bool { return d.mu.logRuns[i].start < d.mu.logRuns[j].start })
	for i := 1; i < len(d.mu.logRuns); i++ {
		if a, b := d.mu.logRuns[i-1], d.mu.logRuns[i]; a.start+a.dataLen > b.start {
			return engines.Corruptf(b.name, engines.UnknownOffset, "log run overlaps the addresses of %s", a.name)
		}
	}
	d.mu.head, d.mu.flushed, d.mu.readOnly, d.mu.tail = st.nextAddr, st.nextAddr, st.nextAddr, st.nextAddr
	return nil
}

// removeLeftovers deletes temporary files and run and hint files the opened
// state does not reference.
func (d *DB) removeLeftovers() {
	live := map[string]bool{}
	for _, l := range d.runs.levels {
		for _, r := range l {
			live[r.name], live[r.hint.Name] = true, true
		}
	}
	engines.RemoveLeftovers(d.o.FS, d.o.Dir, d.log, func(name string) bool { return live[name] }, extRun, extHint)
}

// checkpointLocked describes the live state; runs must be locked.
func (d *DB) checkpointLocked() (engines.Checkpoint, []*run) {
	st := state{nextSeq: d.namer.NextSeq(), nextAddr: d.runs.nextAddr}
	cp := engines.Checkpoint{Kind: Kind}
	var runs []*run
	st.levels = make([][]string, len(d.runs.levels))
	for li := len(d.runs.levels) - 1; li >= 0; li-- {
		for _, r := range d.runs.levels[li] {
			st.levels[li] = append(st.levels[li], r.name)
			cp.Runs = append(cp.Runs, r.info, r.hint)
			runs = append(runs, r)
		}
	}
	cp.State = st.encode()
	return cp, runs
}

// writeCurrentLocked rewrites CURRENT; runs must be locked (or the engine
// not yet shared).
func (d *DB) writeCurrentLocked() error {
	cp, _ := d.checkpointLocked()
	return engines.WriteFileAtomic(d.o.FS, d.o.Dir, currentName, encodeCurrent(cp))
}

// Get returns the value of key. The returned slice is owned by the caller.
func (d *DB) Get(key []byte) ([]byte, bool, error) {
	if err := engines.CheckKey(key); err != nil {
		return nil, false, err
	}
	d.mu.RLock()
	if d.mu.closed {
		d.mu.RUnlock()
		return nil, false, engines.ErrClosed
	}
	p, ok := d.mu.idx.get(key)
	if !ok || p&ptrTomb != 0 {
		d.mu.RUnlock()
		return nil, false, nil
	}
	if p&ptrDisk == 0 && p >= d.mu.head {
		v := d.memValue(p, len(key))
		d.mu.RUnlock()
		return v, true, nil
	}
	r, off := d.locate(p)
	if r == nil {
		d.mu.RUnlock()
		return nil, false, fmt.Errorf("hybridlog: get: index pointer %#x names no live run", p)
	}
	r.refs.Add(1)
	d.readers.Add(1)
	d.mu.RUnlock()
	v, kind, err := d.readRecord(r, off, key)
	d.readers.Done()
	d.unref(r)
	if err != nil {
		return nil, false, fmt.Errorf("hybridlog: get: %w", err)
	}
	if kind != engines.KindSet {
		return nil, false, fmt.Errorf("hybridlog: get: %w", engines.Corruptf(r.name, int64(off), "index expects a value, run holds a tombstone"))
	}
	return v, true, nil
}

// locate finds the run and offset of a pointer below the head; mu held.
func (d *DB) locate(p uint64) (*run, uint64) {
	if p&ptrDisk != 0 {
		return d.mu.slots[uint32((p>>diskOffBits)&maxSlot)], p & diskOffMask
	}
	a := ptrLoc(p)
	i := sort.Search(len(d.mu.logRuns), func(i int) bool { return d.mu.logRuns[i].start > a }) - 1
	if i < 0 || a >= d.mu.logRuns[i].start+d.mu.logRuns[i].dataLen {
		return nil, 0
	}
	return d.mu.logRuns[i], a - d.mu.logRuns[i].start
}

// ringRead copies len(dst) bytes at address a of ring buf into dst.
func ringRead(buf []byte, dst []byte, a uint64) {
	p := int(a % uint64(len(buf)))
	n := copy(dst, buf[p:])
	copy(dst[n:], buf)
}

// ringWrite copies src to address a of ring buf.
func ringWrite(buf []byte, a uint64, src []byte) {
	p := int(a % uint64(len(buf)))
	n := copy(buf[p:], src)
	copy(buf, src[n:])
}

// recordHeader reads the header of the record at address a of ring buf.
func recordHeader(buf []byte, a uint64) (kind byte, klen, vlen int) {
	var h [engines.RecordHeaderSize]byte
	ringRead(buf, h[:], a)
	return h[4], int(binary.LittleEndian.Uint16(h[5:])), int(binary.LittleEndian.Uint32(h[7:]))
}

// memValue copies the value of the in-memory record at a; mu held.
func (d *DB) memValue(a uint64, klen int) []byte {
	_, _, vlen := recordHeader(d.mu.buf, a)
	v := make([]byte, vlen)
	ringRead(d.mu.buf, v, a+uint64(engines.RecordHeaderSize+klen))
	return v
}

// Set stores value under key.
func (d *DB) Set(key, value []byte) error {
	if err := engines.CheckKV(key, value); err != nil {
		return err
	}
	return d.write(engines.KindSet, key, value)
}

// Delete writes a tombstone for key. Deleting an absent key writes nothing.
func (d *DB) Delete(key []byte) error {
	if err := engines.CheckKey(key); err != nil {
		return err
	}
	return d.write(engines.KindDelete, key, nil)
}

func (d *DB) write(kind byte, key, value []byte) error {
	h := d.mu.idx.hash(key)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.closed {
		return engines.ErrClosed
	}
	if d.mu.bgErr != nil {
		return d.mu.bgErr
	}
	i := d.mu.idx.find(h, key)
	if i < 0 && kind == engines.KindDelete {
		return nil // absent everywhere: the index knows every key on disk
	}
	if i >= 0 {
		p := d.mu.idx.slots[i].ptr
		if kind == engines.KindDelete && p&ptrTomb != 0 {
			return nil
		}
		if kind == engines.KindSet && p&(ptrDisk|ptrTomb) == 0 && p >= d.mu.readOnly && d.updateInPlace(p, key, value) {
			return nil
		}
	}
	n := uint64(engines.RecordSize(len(key), len(value)))
	waited, err := d.reserve(n)
	if err != nil {
		return err
	}
	a := d.mu.tail
	if pos := a % uint64(len(d.mu.buf)); pos+n <= uint64(len(d.mu.buf)) {
		engines.PutRecord(d.mu.buf[pos:pos+n], kind, key, value)
	} else {
		if uint64(cap(d.mu.scratch)) < n {
			d.mu.scratch = make([]byte, n)
		}
		s := d.mu.scratch[:n]
		engines.PutRecord(s, kind, key, value)
		ringWrite(d.mu.buf, a, s)
		if n > 1<<20 {
			d.mu.scratch = nil
		}
	}
	d.mu.tail += n
	p := a
	if kind == engines.KindDelete {
		p |= ptrTomb
	}
	if waited {
		i = d.mu.idx.find(h, key)
	}
	if i >= 0 {
		d.mu.idx.slots[i].ptr = p
	} else {
		d.mu.idx.insert(h, key, p)
	}
	if d.mu.tail > d.mutable && d.mu.tail-d.mutable > d.mu.readOnly {
		d.mu.readOnly = d.mu.tail - d.mutable
	}
	if d.mu.readOnly-d.mu.flushed >= d.flushLen {
		d.kickFlush()
	}
	return nil
}

// updateInPlace overwrites the value of the mutable record at a if it has
// the same length and does not wrap around the ring's end; mu held.
func (d *DB) updateInPlace(a uint64, key, value []byte) bool {
	n := uint64(engines.RecordSize(len(key), len(value)))
	pos := a % uint64(len(d.mu.buf))
	if pos+n > uint64(len(d.mu.buf)) {
		return false
	}
	rec := d.mu.buf[pos : pos+n]
	if rec[4] != engines.KindSet || int(binary.LittleEndian.Uint16(rec[5:])) != len(key) ||
		int(binary.LittleEndian.Uint32(rec[7:])) != len(value) {
		return false
	}
	copy(rec[engines.RecordHeaderSize+len(key):], value)
	binary.LittleEndian.PutUint32(rec, crc32.Checksum(rec[4:], engines.CastagnoliTable))
	return true
}

// reserve makes room for n bytes at the tail, evicting flushed records from
// the window and waiting for the flusher when the window is full of records
// not yet on disk. It reports whether it released mu while waiting; mu held.
func (d *DB) reserve(n uint64) (waited bool, err error) {
	for d.mu.tail+n-d.mu.head > d.limit {
		need := min(d.mu.tail+n-d.limit, d.mu.tail)
		if need <= d.mu.flushed {
			d.mu.head = need
			break
		}
		if d.mu.readOnly < need {
			d.mu.readOnly = need
		}
		d.mu.waiters++
		d.kickFlush()
		d.mu.cond.Wait()
		d.mu.waiters--
		waited = true
		if d.mu.closed {
			return true, engines.ErrClosed
		}
		if d.mu.bgErr != nil {
			return true, d.mu.bgErr
		}
	}
	size := d.mu.tail + n - d.mu.head
	switch l := uint64(len(d.mu.buf)); {
	case size > l:
		d.resize(max(size, min(d.limit, max(2*l, minRingLen))))
	case l > d.limit && size <= d.limit:
		d.resize(d.limit)
	}
	return waited, nil
}

// resize moves the window into a new ring buffer of n bytes; mu held. The
// flusher may still be reading the old buffer: it only reads read-only
// records, which the old buffer keeps unchanged.
func (d *DB) resize(n uint64) {
	nb := make([]byte, n)
	if d.mu.tail > d.mu.head {
		w := make([]byte, d.mu.tail-d.mu.head)
		ringRead(d.mu.buf, w, d.mu.head)
		ringWrite(nb, d.mu.head, w)
	}
	d.mu.buf = nb
}

func (d *DB) kickFlush() {
	select {
	case d.flushKick <- struct{}{}:
	default:
	}
}

// fail records a background error: writes and seals return it from now on.
func (d *DB) fail(err error) {
	d.mu.Lock()
	if d.mu.bgErr == nil {
		d.mu.bgErr = err
		d.log.Error("background work failed; the engine refuses writes", "err", err)
	}
	d.mu.cond.Broadcast()
	d.mu.Unlock()
}

// MemoryUsage reports the bytes of the ring buffer, the index and the run
// tables (not the shared block cache).
func (d *DB) MemoryUsage() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.mu.idx == nil {
		return 0
	}
	const perRun = 256
	return int64(len(d.mu.buf)) + int64(cap(d.mu.scratch)) + d.mu.idx.memory() + int64(len(d.mu.slots))*perRun + int64(cap(d.mu.logRuns))*8
}
