package appendlog

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sort"

	"github.com/tierkv/tierkv/engines"
)

const (
	osCreateRW = os.O_RDWR | os.O_CREATE
	osTrunc    = os.O_TRUNC
)

// withDefaults fills zero fields with their defaults.
func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.Threshold == 0 {
		p.Threshold = d.Threshold
	}
	if p.MaxRunsPerLevel == 0 {
		p.MaxRunsPerLevel = d.MaxRunsPerLevel
	}
	return p
}

// Open opens the engine in o.Dir. With o.Checkpoint it adopts exactly that
// checkpoint (its runs must be in o.Dir); without, it recovers the local
// state: the runs named by CURRENT, sealed logs not yet recorded there, and
// the valid prefix of active.log (see the package doc). Zero fields of p take
// their defaults.
func Open(o engines.OpenOptions, p Params) (*DB, error) {
	if o.Dir == "" {
		return nil, errors.New("appendlog: open: OpenOptions.Dir is required")
	}
	o = o.EnsureDefaults()
	p = p.withDefaults()
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := o.FS.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("appendlog: open: %w", err)
	}
	db := &DB{
		o: o, p: p,
		wbSize:    int(min(int64(writeBufferSize), p.Threshold/8)),
		idx:       map[string]uint32{},
		levels:    [][]*run{nil},
		pinned:    map[uint64][]*run{},
		kickSeal:  make(chan struct{}, 1),
		kickMerge: make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	if err := db.recover(); err != nil {
		for _, r := range db.runs {
			if r != nil && r.f != nil {
				_ = r.f.Close()
			}
		}
		return nil, err
	}
	db.wg.Add(2)
	go db.sealLoop()
	go db.mergeLoop()
	kick(db.kickMerge)
	return db, nil
}

// recover builds the in-memory state from o.Checkpoint or from the directory.
func (db *DB) recover() error {
	o := db.o
	fromCP := o.Checkpoint != nil
	var st state
	var cpInfos map[string]engines.RunInfo
	if fromCP {
		cp := o.Checkpoint
		if cp.Kind != Kind {
			return fmt.Errorf("appendlog: open checkpoint of kind %q: %w", cp.Kind, engines.ErrKindMismatch)
		}
		var err error
		if st, err = decodeState(cp.State, "checkpoint state"); err != nil {
			return fmt.Errorf("appendlog: open checkpoint: %w", err)
		}
		cpInfos = map[string]engines.RunInfo{}
		for _, ri := range cp.Runs {
			cpInfos[ri.Name] = ri
		}
		for _, lvl := range st.Levels {
			for _, rr := range lvl {
				for _, n := range []string{rr.Run, rr.Hint} {
					if _, ok := cpInfos[n]; !ok {
						return fmt.Errorf("appendlog: open checkpoint: state names %s, absent from its run list: %w", n, engines.ErrMissingRun)
					}
				}
			}
		}
		if err := engines.CheckRunsPresent(o.FS, o.Dir, cp); err != nil {
			return fmt.Errorf("appendlog: open checkpoint: %w", err)
		}
	} else {
		b, found, err := engines.ReadStateFile(o.FS, o.Dir, currentName)
		if err != nil {
			return fmt.Errorf("appendlog: open: %w", err)
		}
		if found {
			if st, err = decodeCurrent(b); err != nil {
				return fmt.Errorf("appendlog: open: %w", err)
			}
		} else if err := engines.WriteFileAtomic(o.FS, o.Dir, currentName, encodeCurrent(st)); err != nil {
			// A new directory gets its CURRENT before active.log or any run
			// (engines.ReadStateFile).
			return fmt.Errorf("appendlog: open: %w", err)
		}
	}
	db.namer = engines.NewRunNamer(st.NextSeq)

	// Run names are observed so that new names sort after them.
	ents, err := o.FS.ReadDir(o.Dir)
	if err != nil {
		return fmt.Errorf("appendlog: open: %w", err)
	}
	type onDisk struct {
		name string
		seq  uint64
		ext  string
	}
	var files []onDisk
	for _, de := range ents {
		name := de.Name()
		if seq, _, ext, ok := engines.ParseRunName(name); ok {
			db.namer.Observe(seq)
			files = append(files, onDisk{name, seq, ext})
		}
	}

	// Live runs, oldest level first so that newer hint entries win.
	db.levels = make([][]*run, max(len(st.Levels), 1))
	referenced := map[string]bool{}
	for l := len(st.Levels) - 1; l >= 0; l-- {
		for _, rr := range st.Levels[l] {
			r, err := db.loadRun(rr, cpInfos)
			if err != nil {
				return fmt.Errorf("appendlog: open: %w", err)
			}
			db.levels[l] = append(db.levels[l], r)
			referenced[rr.Run], referenced[rr.Hint] = true, true
		}
	}

	// Sealed logs the crash kept out of CURRENT: adopt them, oldest first.
	if !fromCP {
		sort.Slice(files, func(i, j int) bool { return files[i].seq < files[j].seq })
		for _, fl := range files {
			if fl.ext != extSealed || fl.seq < st.SealFloor || referenced[fl.name] {
				continue
			}
			r, err := db.adopt(fl.name)
			if err != nil {
				return fmt.Errorf("appendlog: open: adopt %s: %w", fl.name, err)
			}
			if r != nil {
				db.levels[0] = append(db.levels[0], r)
				referenced[r.name], referenced[r.hint] = true, true
			}
		}
	}

	if err := db.openActive(fromCP); err != nil {
		return fmt.Errorf("appendlog: open: %w", err)
	}
	db.version++
	db.sealMu.Lock()
	err = db.writeCurrentLocked(true)
	db.sealMu.Unlock()
	if err != nil {
		return fmt.Errorf("appendlog: open: %w", err)
	}
	engines.RemoveLeftovers(o.FS, o.Dir, o.Logger, func(name string) bool { return referenced[name] }, extSealed, extMerged, extHint)
	return nil
}

// loadRun opens a live run, checks its footer (and, from a checkpoint, its
// recorded checksums) and loads its hint file into the index.
func (db *DB) loadRun(rr runRef, cpInfos map[string]engines.RunInfo) (*run, error) {
	f, err := engines.Open(db.o.FS, db.path(rr.Run))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", engines.ErrMissingRun, rr.Run)
		}
		return nil, err
	}
	r := db.newRunLocked(rr.Run, f)
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", rr.Run, err)
	}
	size := st.Size()
	if size < footerSize {
		return nil, engines.Corruptf(rr.Run, engines.UnknownOffset, "run of %d bytes is shorter than its %d-byte footer", size, footerSize)
	}
	fb := make([]byte, footerSize)
	if _, err := f.ReadAt(fb, size-footerSize); err != nil {
		return nil, fmt.Errorf("read footer of %s: %w", rr.Run, err)
	}
	ft, err := decodeFooter(fb, runMagic, rr.Run, size)
	if err != nil {
		return nil, err
	}
	seq, _, _, _ := engines.ParseRunName(rr.Run)
	r.seq, r.hint = seq, rr.Hint
	r.size, r.flushed, r.count, r.crc = int64(ft.BodyLen), int64(ft.BodyLen), ft.Count, ft.BodyCRC
	r.info = engines.RunInfo{Name: rr.Run, Size: size, CRC32C: crc32.Update(ft.BodyCRC, engines.CastagnoliTable, fb)}
	if want, ok := cpInfos[rr.Run]; ok && want.CRC32C != r.info.CRC32C {
		return nil, engines.Corruptf(rr.Run, size-footerSize, "run checksum %08x, checkpoint records %08x", r.info.CRC32C, want.CRC32C)
	}

	hb, err := engines.ReadFile(db.o.FS, db.path(rr.Hint))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", engines.ErrMissingRun, rr.Hint)
		}
		return nil, fmt.Errorf("read hint %s: %w", rr.Hint, err)
	}
	r.hintInfo = engines.RunInfo{Name: rr.Hint, Size: int64(len(hb)), CRC32C: crc32.Checksum(hb, engines.CastagnoliTable)}
	if want, ok := cpInfos[rr.Hint]; ok && want.CRC32C != r.hintInfo.CRC32C {
		return nil, engines.Corruptf(rr.Hint, engines.UnknownOffset, "hint checksum %08x, checkpoint records %08x", r.hintInfo.CRC32C, want.CRC32C)
	}
	// Check the whole hint before applying any of it.
	hft, err := decodeHint(hb, rr.Hint, ft.BodyLen, nil)
	if err != nil {
		return nil, err
	}
	if hft.LinkCRC != ft.BodyCRC {
		return nil, engines.Corruptf(rr.Hint, int64(len(hb))-footerSize+20, "hint indexes a run with body checksum %08x, %s has %08x", hft.LinkCRC, rr.Run, ft.BodyCRC)
	}
	if _, err := decodeHint(hb, rr.Hint, ft.BodyLen, func(kind byte, key []byte, off uint64, n uint32) {
		db.applyLocked(key, mkLoc(kind, off, r.id, int(n)))
	}); err != nil {
		return nil, err
	}
	r.durable, r.live, r.pins = true, true, 1
	return r, nil
}

// adopt turns a sealed log that CURRENT does not record (a crash between its
// rename and CURRENT) into a live level-0 run: valid prefix, truncate, footer,
// fsync, hint. It returns nil if no record is valid; the file, unreferenced,
// is then removed with the other leftovers.
func (db *DB) adopt(name string) (*run, error) {
	f, err := db.o.FS.OpenFile(db.path(name), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	size, end := st.Size(), st.Size()
	if size >= footerSize {
		fb := make([]byte, footerSize)
		if _, err := f.ReadAt(fb, size-footerSize); err == nil {
			if ft, err := decodeFooter(fb, runMagic, name, size); err == nil {
				end = int64(ft.BodyLen)
			}
		}
	}
	r := db.newRunLocked(name, f)
	r.seq, _, _, _ = engines.ParseRunName(name)
	var hb hintWriter // every record: recovery is rare, the hint stays exact
	// Records are applied to the index only once the run is known to stay.
	type applied struct {
		key string
		l   loc
	}
	var recs []applied
	valid, err := scanRecords(f, name, 0, end, false, func(off int64, raw []byte, rec engines.Record) error {
		l := mkLoc(rec.Kind, uint64(off), r.id, len(raw))
		hb.add(rec.Kind, rec.Key, l.off, l.size())
		recs = append(recs, applied{string(rec.Key), l})
		r.crc = crc32.Update(r.crc, engines.CastagnoliTable, raw)
		r.count++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if valid == 0 {
		// Unreferenced, it goes with the other leftovers at the end of Open.
		db.runs[r.id] = nil
		_ = f.Close()
		db.o.Logger.Warn("appendlog: dropping an unrecorded sealed log without valid records", "run", name)
		return nil, nil
	}
	if valid != end {
		db.o.Logger.Warn("appendlog: cut the torn tail of an unrecorded sealed log", "run", name, "offset", valid, "bytes", end-valid)
	}
	r.size, r.flushed = valid, valid
	fb := appendFooter(nil, footer{BodyLen: uint64(valid), Count: r.count, BodyCRC: r.crc}, runMagic)
	if err := f.Truncate(valid); err != nil {
		return nil, err
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		return nil, err
	}
	if _, err := f.Write(fb); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := db.o.FS.SyncDir(db.o.Dir); err != nil {
		return nil, err
	}
	r.info = engines.RunInfo{Name: name, Size: valid + footerSize, CRC32C: crc32.Update(r.crc, engines.CastagnoliTable, fb)}
	r.hint = db.namer.Next(extHint)
	if r.hintInfo, err = engines.WriteRun(db.o.FS, db.o.Dir, r.hint, hb.encode(r.crc)); err != nil {
		return nil, err
	}
	for _, a := range recs {
		db.applyLocked([]byte(a.key), a.l)
	}
	r.durable, r.live, r.pins = true, true, 1
	db.o.Logger.Info("appendlog: adopted a sealed log left out of CURRENT by a crash", "run", name, "records", r.count)
	db.sealedEvent(r.info, r.hintInfo)
	return r, nil
}

// openActive opens active.log: emptied when adopting a checkpoint, otherwise
// replayed up to its last valid record and truncated there.
func (db *DB) openActive(fromCP bool) error {
	flag := osCreateRW
	if fromCP {
		flag |= osTrunc
	}
	f, err := db.o.FS.OpenFile(db.path(activeLogName), flag, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", activeLogName, err)
	}
	a := db.newRunLocked(activeLogName, f)
	a.buf = make([]byte, 0, db.wbSize)
	db.active = a
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", activeLogName, err)
	}
	size := st.Size()
	valid, err := scanRecords(f, activeLogName, 0, size, false, func(off int64, raw []byte, rec engines.Record) error {
		db.applyLocked(rec.Key, mkLoc(rec.Kind, uint64(off), a.id, len(raw)))
		a.crc = crc32.Update(a.crc, engines.CastagnoliTable, raw)
		a.count++
		return nil
	})
	if err != nil {
		return err
	}
	if valid != size {
		db.o.Logger.Warn("appendlog: cut the torn tail of the active log", "file", activeLogName, "offset", valid, "bytes", size-valid)
		if err := f.Truncate(valid); err != nil {
			return fmt.Errorf("truncate %s at %d: %w", activeLogName, valid, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", activeLogName, err)
		}
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		return fmt.Errorf("seek %s: %w", activeLogName, err)
	}
	a.size, a.flushed = valid, valid
	return nil
}
