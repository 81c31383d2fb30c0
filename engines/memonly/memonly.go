package memonly

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/tierkv/tierkv/engines"
)

// Kind is the engine kind written into checkpoints.
const Kind = "memonly"

// entryOverhead estimates the bytes a map entry costs beyond its key and
// value bytes: the string and slice headers in the map slot, the slot's
// share of the bucket, and the allocation headers of key and value.
const entryOverhead = 64

// Params are MemOnly's parameters: there are none.
type Params struct{}

// DefaultParams returns the (empty) parameters.
func DefaultParams() Params { return Params{} }

// ParseParams refuses every parameter name: MemOnly has none.
func ParseParams(p engines.Params) (Params, error) {
	if len(p) == 0 {
		return Params{}, nil
	}
	names := make([]string, 0, len(p))
	for k := range p {
		names = append(names, k)
	}
	sort.Strings(names)
	return Params{}, &engines.ParamError{Engine: Kind, Name: names[0], Value: p[names[0]], Want: "no parameter at all: memonly takes none"}
}

// Map returns the parameters as strings: an empty, non-nil map.
func (Params) Map() engines.Params { return engines.Params{} }

// DB is the MemOnly engine. It implements engines.Engine.
type DB struct {
	o     engines.OpenOptions
	namer *engines.RunNamer

	// sealMu serializes Seal and Close; it guards sealedVersion.
	sealMu        sync.Mutex
	sealedVersion uint64 // mu.version captured by the last dump (or open)

	mu struct {
		sync.RWMutex
		closed bool
		// m is the state; while a dump runs it is the delta of writes made
		// since the freeze, where a nil value is a tombstone.
		m map[string][]byte
		// frozen is non-nil while a dump runs: the state being dumped.
		frozen              map[string][]byte
		mBytes, frozenBytes int64
		version             uint64 // number of writes since open
	}

	runs struct {
		sync.Mutex
		closed bool
		live   *engines.RunInfo    // the current dump; nil: empty state, never dumped
		refs   map[string]int      // run name -> live (1) + pins
		pins   map[uint64][]string // checkpoint Seq -> pinned run names
		seq    uint64              // last checkpoint Seq handed out
	}
}

var _ engines.Engine = (*DB)(nil)

// Open opens a MemOnly engine in o.Dir: from o.Checkpoint when given,
// otherwise from the dump named by the CURRENT file (none in a new directory:
// empty store; see engines.ReadStateFile). The
// whole dump is read and verified.
func Open(o engines.OpenOptions, p Params) (*DB, error) {
	o = o.EnsureDefaults()
	if o.Dir == "" {
		return nil, errors.New("memonly: open: OpenOptions.Dir is required")
	}
	if err := o.FS.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("memonly: create dir: %w", err)
	}
	var (
		cur   current
		fresh bool // a new directory (engines.ReadStateFile)
	)
	if cp := o.Checkpoint; cp != nil {
		if cp.Kind != Kind {
			return nil, fmt.Errorf("memonly: open checkpoint of kind %q: %w", cp.Kind, engines.ErrKindMismatch)
		}
		next, err := decodeState(cp.State)
		if err != nil {
			return nil, fmt.Errorf("memonly: open checkpoint: %w", err)
		}
		if len(cp.Runs) > 1 {
			return nil, fmt.Errorf("memonly: open checkpoint: %w",
				engines.Corruptf("checkpoint", engines.UnknownOffset, "%d runs, a memonly checkpoint has at most one", len(cp.Runs)))
		}
		if err := engines.CheckRunsPresent(o.FS, o.Dir, cp); err != nil {
			return nil, fmt.Errorf("memonly: open checkpoint: %w", err)
		}
		cur.nextSeq = next
		if len(cp.Runs) == 1 {
			r := cp.Runs[0]
			if _, _, ext, ok := engines.ParseRunName(r.Name); !ok || ext != DumpExt {
				return nil, fmt.Errorf("memonly: open checkpoint: %w", engines.Corruptf("checkpoint", engines.UnknownOffset, "bad run name %q", r.Name))
			}
			cur.run = &r
		}
	} else {
		data, found, err := engines.ReadStateFile(o.FS, o.Dir, CurrentFile)
		if err != nil {
			return nil, fmt.Errorf("memonly: open: %w", err)
		}
		if found {
			if cur, err = decodeCurrent(data); err != nil {
				return nil, fmt.Errorf("memonly: open: %w", err)
			}
		} else {
			fresh = true
		}
	}

	db := &DB{o: o}
	db.mu.m = map[string][]byte{}
	db.runs.refs = map[string]int{}
	db.runs.pins = map[uint64][]string{}
	if cur.run != nil {
		n, err := db.load(*cur.run)
		if err != nil {
			return nil, err
		}
		o.Logger.Debug("memonly: loaded dump", "dir", o.Dir, "run", cur.run.Name, "records", n)
	}
	db.namer = engines.NewRunNamer(cur.nextSeq)
	if cur.run != nil {
		seq, _, _, _ := engines.ParseRunName(cur.run.Name)
		db.namer.Observe(seq)
		db.runs.live = cur.run
		db.runs.refs[cur.run.Name] = 1
	}
	// A checkpoint's state becomes CURRENT; a new directory gets its CURRENT
	// before any dump is written.
	if o.Checkpoint != nil || fresh {
		cur.nextSeq = db.namer.NextSeq()
		if err := engines.WriteFileAtomic(o.FS, o.Dir, CurrentFile, encodeCurrent(cur)); err != nil {
			return nil, fmt.Errorf("memonly: open: %w", err)
		}
	}
	live := func(name string) bool { return db.runs.live != nil && name == db.runs.live.Name }
	engines.RemoveLeftovers(o.FS, o.Dir, o.Logger, live, DumpExt)
	return db, nil
}

// load reads, verifies and loads the dump r into the map.
func (db *DB) load(r engines.RunInfo) (uint64, error) {
	data, err := readRun(db.o.FS, filepath.Join(db.o.Dir, r.Name), r.Size)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("memonly: load dump: %w: %s", engines.ErrMissingRun, r.Name)
	}
	if err != nil {
		return 0, fmt.Errorf("memonly: load dump %s: %w", r.Name, err)
	}
	if c := crc32.Checksum(data, engines.CastagnoliTable); c != r.CRC32C {
		return 0, fmt.Errorf("memonly: load dump: %w", engines.Corruptf(r.Name, engines.UnknownOffset, "file checksum %08x, %08x expected", c, r.CRC32C))
	}
	m := db.mu.m
	var size int64
	n, err := DecodeDump(data, r.Name, func(k, v []byte) error {
		m[string(k)] = append(make([]byte, 0, len(v)), v...)
		size += cost(len(k), len(v))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("memonly: load dump: %w", err)
	}
	db.mu.mBytes = size
	return n, nil
}

// readRun reads a whole run file of the expected size in one read. A file of
// another size is corruption.
func readRun(fsys engines.FS, path string, size int64) ([]byte, error) {
	f, err := engines.Open(fsys, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != size {
		return nil, engines.Corruptf(filepath.Base(path), st.Size(), "dump of %d bytes, %d expected", st.Size(), size)
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, err
	}
	return data, nil
}

func cost(klen, vlen int) int64 { return int64(klen + vlen + entryOverhead) }

// Get implements engines.Engine.
func (db *DB) Get(key []byte) ([]byte, bool, error) {
	if err := engines.CheckKey(key); err != nil {
		return nil, false, err
	}
	db.mu.RLock()
	if db.mu.closed {
		db.mu.RUnlock()
		return nil, false, engines.ErrClosed
	}
	v, ok := db.mu.m[string(key)]
	if db.mu.frozen != nil {
		if ok && v == nil {
			ok = false // deleted during the dump
		} else if !ok {
			v, ok = db.mu.frozen[string(key)]
		}
	}
	db.mu.RUnlock()
	if !ok {
		return nil, false, nil
	}
	// Stored values are never modified in place, so copying after unlocking
	// is safe.
	return append(make([]byte, 0, len(v)), v...), true, nil
}

// Set implements engines.Engine.
func (db *DB) Set(key, value []byte) error {
	if err := engines.CheckKV(key, value); err != nil {
		return err
	}
	v := append(make([]byte, 0, len(value)), value...) // non-nil even when empty
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.closed {
		return engines.ErrClosed
	}
	db.put(string(key), v)
	return nil
}

// Delete implements engines.Engine.
func (db *DB) Delete(key []byte) error {
	if err := engines.CheckKey(key); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.closed {
		return engines.ErrClosed
	}
	if db.mu.frozen != nil {
		db.put(string(key), nil) // a tombstone in the delta
		return nil
	}
	if old, ok := db.mu.m[string(key)]; ok {
		db.mu.mBytes -= cost(len(key), len(old))
		delete(db.mu.m, string(key))
	}
	db.mu.version++
	return nil
}

// put stores v (nil: tombstone) in the map taking writes. db.mu is held.
func (db *DB) put(k string, v []byte) {
	if old, ok := db.mu.m[k]; ok {
		db.mu.mBytes -= cost(len(k), len(old))
	}
	db.mu.m[k] = v
	db.mu.mBytes += cost(len(k), len(v))
	db.mu.version++
}

// MemoryUsage implements engines.Engine: an estimate of the map's bytes
// (keys, values and per-entry overhead), including a delta during a dump.
func (db *DB) MemoryUsage() int64 {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.mu.mBytes + db.mu.frozenBytes
}

// Seal implements engines.Engine: it dumps the whole state to a new run if
// anything was written since the last dump, and returns a checkpoint naming
// the current dump, pinned until Release.
func (db *DB) Seal() (engines.Checkpoint, error) {
	db.sealMu.Lock()
	defer db.sealMu.Unlock()
	db.mu.Lock()
	if db.mu.closed {
		db.mu.Unlock()
		return engines.Checkpoint{}, engines.ErrClosed
	}
	if db.mu.version == db.sealedVersion {
		db.mu.Unlock()
		return db.pinLive(), nil
	}
	// Freeze the state; writes go to an empty delta meanwhile.
	frozen, version := db.mu.m, db.mu.version
	db.mu.frozen, db.mu.frozenBytes = frozen, db.mu.mBytes
	db.mu.m, db.mu.mBytes = map[string][]byte{}, 0
	db.mu.Unlock()

	info, err := db.dump(frozen)

	// Fold the delta back into the state, whether the dump worked or not.
	db.mu.Lock()
	delta := db.mu.m
	db.mu.m, db.mu.mBytes = frozen, db.mu.frozenBytes
	db.mu.frozen, db.mu.frozenBytes = nil, 0
	for k, v := range delta {
		old, had := db.mu.m[k]
		if had {
			db.mu.mBytes -= cost(len(k), len(old))
		}
		if v == nil {
			delete(db.mu.m, k)
			continue
		}
		db.mu.m[k] = v
		db.mu.mBytes += cost(len(k), len(v))
	}
	db.mu.Unlock()
	if err != nil {
		return engines.Checkpoint{}, fmt.Errorf("memonly: seal: %w", err)
	}
	db.sealedVersion = version
	db.install(info)
	return db.pinLive(), nil
}

// dump writes state to a new run, makes it current in CURRENT and reports it
// to the listener. sealMu is held; state is not modified meanwhile.
func (db *DB) dump(state map[string][]byte) (engines.RunInfo, error) {
	keys := make([]string, 0, len(state))
	for k := range state {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	name := db.namer.Next(DumpExt)
	w, err := engines.CreateRun(db.o.FS, db.o.Dir, name)
	if err != nil {
		return engines.RunInfo{}, err
	}
	dw := newDumpWriter(w)
	for _, k := range keys {
		if err := dw.add([]byte(k), state[k]); err != nil {
			w.Abort()
			return engines.RunInfo{}, err
		}
	}
	if err := dw.finish(); err != nil {
		w.Abort()
		return engines.RunInfo{}, err
	}
	info, err := w.Finish()
	if err != nil {
		return engines.RunInfo{}, err
	}
	// The dump is durable; now point CURRENT at it (data first, pointer last).
	cur := current{nextSeq: db.namer.NextSeq(), run: &info}
	if err := engines.WriteFileAtomic(db.o.FS, db.o.Dir, CurrentFile, encodeCurrent(cur)); err != nil {
		// The dump stays: if the rename took effect and only the directory
		// fsync failed, CURRENT already names it. The next Open removes it
		// if CURRENT does not.
		return engines.RunInfo{}, err
	}
	if f := db.o.Listener.RunSealed; f != nil {
		f(info)
	}
	db.o.Logger.Debug("memonly: dumped state", "dir", db.o.Dir, "run", name, "keys", len(keys), "bytes", info.Size)
	return info, nil
}

// install makes info the live run and drops the live reference of the
// previous one, retiring it unless a checkpoint pins it.
func (db *DB) install(info engines.RunInfo) {
	db.runs.Lock()
	old := db.runs.live
	db.runs.live = &info
	db.runs.refs[info.Name]++
	var dead []string
	if old != nil {
		dead = db.unref(old.Name, dead)
	}
	db.runs.Unlock()
	db.retire(dead)
}

// pinLive returns a checkpoint of the live run and pins it.
func (db *DB) pinLive() engines.Checkpoint {
	db.runs.Lock()
	defer db.runs.Unlock()
	db.runs.seq++
	cp := engines.Checkpoint{Kind: Kind, Runs: []engines.RunInfo{}, State: encodeState(db.namer.NextSeq()), Seq: db.runs.seq}
	if r := db.runs.live; r != nil {
		cp.Runs = append(cp.Runs, *r)
		db.runs.refs[r.Name]++
		db.runs.pins[cp.Seq] = []string{r.Name}
	} else {
		db.runs.pins[cp.Seq] = nil
	}
	return cp
}

// unref drops one reference to name, appending it to dead when none is left.
// db.runs is held.
func (db *DB) unref(name string, dead []string) []string {
	if db.runs.refs[name]--; db.runs.refs[name] <= 0 {
		delete(db.runs.refs, name)
		dead = append(dead, name)
	}
	return dead
}

// retire deletes the files of dead runs (CURRENT no longer names them) and
// reports them to the listener.
func (db *DB) retire(dead []string) {
	for _, name := range dead {
		if err := db.o.FS.Remove(filepath.Join(db.o.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Left for the leftover sweep of the next open.
			db.o.Logger.Warn("memonly: remove retired run", "dir", db.o.Dir, "run", name, "err", err)
			continue
		}
		if f := db.o.Listener.RunRetired; f != nil {
			f(name)
		}
	}
}

// Release implements engines.Engine: it unpins the run of cp. Releasing
// twice, a checkpoint of another open, or after Close is a no-op.
func (db *DB) Release(cp engines.Checkpoint) {
	db.runs.Lock()
	names, ok := db.runs.pins[cp.Seq]
	if db.runs.closed || !ok || !sameNames(names, cp.Runs) {
		db.runs.Unlock()
		return
	}
	delete(db.runs.pins, cp.Seq)
	var dead []string
	for _, n := range names {
		dead = db.unref(n, dead)
	}
	db.runs.Unlock()
	db.retire(dead)
}

func sameNames(names []string, runs []engines.RunInfo) bool {
	if len(names) != len(runs) {
		return false
	}
	for i, r := range runs {
		if names[i] != r.Name {
			return false
		}
	}
	return true
}

// Close implements engines.Engine: it dumps the state if it changed since the
// last dump, so that reopening gives the identical state, and drops the map.
// Runs pinned by unreleased checkpoints stay on disk until the next open.
func (db *DB) Close() error {
	db.sealMu.Lock()
	defer db.sealMu.Unlock()
	db.mu.Lock()
	if db.mu.closed {
		db.mu.Unlock()
		return engines.ErrClosed
	}
	db.mu.closed = true
	state, dirty := db.mu.m, db.mu.version != db.sealedVersion
	db.mu.Unlock()

	var err error
	if dirty {
		var info engines.RunInfo
		if info, err = db.dump(state); err == nil {
			db.install(info)
		}
	}
	db.runs.Lock()
	db.runs.closed = true
	db.runs.Unlock()
	db.mu.Lock()
	db.mu.m, db.mu.mBytes = nil, 0
	db.mu.Unlock()
	if err != nil {
		return fmt.Errorf("memonly: close: %w", err)
	}
	return nil
}
