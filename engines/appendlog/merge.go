package appendlog

import (
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
)

// remapBatch is the number of index entries remapped per hold of the lock.
const remapBatch = 1024

// sealLoop makes threshold-sealed logs durable in the background.
func (db *DB) sealLoop() {
	defer db.wg.Done()
	for {
		select {
		case <-db.stop:
			return
		case <-db.kickSeal:
			if err := db.persistPending(); err != nil {
				db.o.Logger.Error("appendlog: background seal failed", "dir", db.o.Dir, "err", err)
			}
		}
	}
}

// mergeLoop merges full levels in the background, one merge at a time.
func (db *DB) mergeLoop() {
	defer db.wg.Done()
	for {
		select {
		case <-db.stop:
			return
		case <-db.kickMerge:
		}
		for {
			lvl, inputs, oldest := db.pickMerge()
			if inputs == nil {
				break
			}
			err := db.merge(lvl, inputs, oldest)
			db.mu.Lock()
			db.merging = false
			db.mu.Unlock()
			if err != nil {
				if errors.Is(err, errStopped) {
					return
				}
				db.mu.Lock()
				if db.mergeErr == nil {
					db.mergeErr = err
				}
				db.mu.Unlock()
				db.o.Logger.Error("appendlog: merge failed; merges stop until reopen", "dir", db.o.Dir, "level", lvl, "err", err)
				break
			}
		}
	}
}

// dueLocked returns the lowest level holding at least MaxRunsPerLevel durable
// runs and how many durable runs (a prefix of it) it holds, or -1.
func (db *DB) dueLocked() (int, int) {
	for l, lvl := range db.levels {
		n := 0
		for n < len(lvl) && lvl[n].durable {
			n++
		}
		if n >= db.p.MaxRunsPerLevel {
			return l, n
		}
	}
	return -1, 0
}

// mergeDueLocked reports whether a level is full.
func (db *DB) mergeDueLocked() bool {
	l, _ := db.dueLocked()
	return l >= 0
}

// pickMerge returns the lowest full level, its durable runs (a prefix of the
// level, oldest first) and whether every higher level is empty, i.e. the
// merge includes the oldest data. It marks a merge as running.
func (db *DB) pickMerge() (int, []*run, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed || db.mergeErr != nil || db.failed != nil {
		return 0, nil, false
	}
	l, n := db.dueLocked()
	if l < 0 {
		return 0, nil, false
	}
	oldest := true
	for _, higher := range db.levels[l+1:] {
		if len(higher) > 0 {
			oldest = false
		}
	}
	db.merging = true
	return l, append([]*run(nil), db.levels[l][:n]...), oldest
}

// remap moves an index entry from a merge input to the merge output, if the
// entry still points at the input record.
type remap struct {
	key      string
	from, to loc
}

// mergeOutput is what a merge's scan wrote to its output run.
type mergeOutput struct {
	hint    hintWriter
	remaps  []remap // index entries to point at the output
	purges  []remap // tombstones to drop from the index
	bodyCRC uint32
	count   uint64 // records written
}

// merge combines the runs of level lvl (inputs, oldest first) into one run at
// level lvl+1; see the package doc for what compaction drops. It scans the
// inputs into a new run, finishes it, points the index at it and installs it
// in place of the inputs.
func (db *DB) merge(lvl int, inputs []*run, oldest bool) error {
	name := db.namer.Next(extMerged)
	w, err := engines.CreateRun(db.o.FS, db.o.Dir, name)
	if err != nil {
		return fmt.Errorf("appendlog: merge level %d: %w", lvl, err)
	}
	out := &run{name: name}
	db.mu.Lock()
	out.id = uint32(len(db.runs))
	db.runs = append(db.runs, nil) // reserved until the output is readable
	db.mu.Unlock()

	res, err := db.mergeScan(w, out.id, inputs, oldest)
	if err != nil {
		w.Abort()
		if errors.Is(err, errStopped) {
			return err
		}
		return fmt.Errorf("appendlog: merge level %d: %w", lvl, err)
	}
	var infos []engines.RunInfo
	if res.count > 0 {
		if infos, err = db.finishMergeOutput(w, out, res); err != nil {
			return fmt.Errorf("appendlog: merge level %d: %w", lvl, err)
		}
	} else {
		w.Abort()
	}
	db.sealedEvent(infos...)
	db.repoint(res.remaps, res.purges)
	if err := db.installMerge(lvl, inputs, out, res.count > 0); err != nil {
		return fmt.Errorf("appendlog: merge level %d: %w", lvl, err)
	}
	db.o.Logger.Debug("appendlog: merged", "level", lvl, "inputs", len(inputs), "output", name, "records", res.count, "compaction", db.p.Compaction)
	return nil
}

// mergeScan copies the records of inputs that survive into w, the output run
// with id outID, and collects its hint entries and the index changes.
func (db *DB) mergeScan(w *engines.RunWriter, outID uint32, inputs []*run, oldest bool) (*mergeOutput, error) {
	res := &mergeOutput{}
	seen := 0
	for _, in := range inputs {
		_, err := scanRecords(in.f, in.name, 0, in.size, true, func(off int64, raw []byte, rec engines.Record) error {
			if seen++; seen%1024 == 0 {
				select {
				case <-db.stop:
					return errStopped
				default:
				}
			}
			from := mkLoc(rec.Kind, uint64(off), in.id, len(raw))
			db.mu.RLock()
			slot, present := db.idx[string(rec.Key)]
			var e loc
			if present {
				e = db.slots[slot]
			}
			current := present && e == from
			// Superseded by a record in a durable run (an input included)?
			// A key without entry had its tombstone purged by a merge that
			// included all older data: it is durably gone too.
			durablyGone := !present || (!current && db.runs[e.run] != nil && db.runs[e.run].durable)
			db.mu.RUnlock()
			// A current tombstone in a merge of the oldest data shadows
			// nothing: it is purged from the index and gets no hint entry.
			purge := current && rec.Kind == engines.KindDelete && oldest
			if db.p.Compaction && (durablyGone || purge) {
				if purge {
					res.purges = append(res.purges, remap{key: string(rec.Key), from: from})
				}
				return nil
			}
			to := mkLoc(rec.Kind, uint64(w.Offset()), outID, len(raw))
			if _, err := w.Write(raw); err != nil {
				return err
			}
			res.bodyCRC = crc32.Update(res.bodyCRC, engines.CastagnoliTable, raw)
			res.count++
			// Hint entries for every record not durably superseded: its
			// successor, if any, has its own entry or is in the active log.
			switch {
			case purge:
				res.purges = append(res.purges, remap{key: string(rec.Key), from: from})
			case !durablyGone:
				res.hint.add(rec.Kind, rec.Key, to.off, to.size())
				if current {
					res.remaps = append(res.remaps, remap{key: string(rec.Key), from: from, to: to})
				}
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, errStopped) {
				return nil, err
			}
			return nil, fmt.Errorf("read %s: %w", in.name, err)
		}
	}
	return res, nil
}

// finishMergeOutput writes the footer of the output run out, makes it
// durable with its hint file and readable, and returns both files' infos.
func (db *DB) finishMergeOutput(w *engines.RunWriter, out *run, res *mergeOutput) ([]engines.RunInfo, error) {
	body := w.Offset()
	if _, err := w.Write(appendFooter(nil, footer{BodyLen: uint64(body), Count: res.count, BodyCRC: res.bodyCRC}, runMagic)); err != nil {
		w.Abort()
		return nil, err
	}
	info, err := w.Finish()
	if err != nil {
		return nil, err
	}
	f, err := engines.Open(db.o.FS, db.path(out.name))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", out.name, err)
	}
	hint := db.namer.Next(extHint)
	hintInfo, err := engines.WriteRun(db.o.FS, db.o.Dir, hint, res.hint.encode(res.bodyCRC))
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write hint of %s: %w", out.name, err)
	}
	out.f, out.fileID, out.size, out.flushed, out.count, out.crc = f, cache.NewFileID(), body, body, res.count, res.bodyCRC
	out.info, out.hint, out.hintInfo, out.durable = info, hint, hintInfo, true
	db.mu.Lock()
	db.runs[out.id] = out
	db.mu.Unlock()
	return []engines.RunInfo{info, hintInfo}, nil
}

// repoint points the index at the merge output and drops purged tombstones,
// a batch at a time; both copies of a record are readable meanwhile.
func (db *DB) repoint(remaps, purges []remap) {
	for i := 0; i < len(remaps); i += remapBatch {
		db.mu.Lock()
		for _, rm := range remaps[i:min(i+remapBatch, len(remaps))] {
			if slot, ok := db.idx[rm.key]; ok && db.slots[slot] == rm.from {
				db.slots[slot] = rm.to
			}
		}
		db.mu.Unlock()
	}
	for i := 0; i < len(purges); i += remapBatch {
		db.mu.Lock()
		for _, rm := range purges[i:min(i+remapBatch, len(purges))] {
			db.purgeLocked(rm.key, rm.from)
		}
		db.mu.Unlock()
	}
}

// installMerge replaces the inputs at level lvl by out (if it holds records)
// at level lvl+1, records that in CURRENT and then removes the inputs' files.
func (db *DB) installMerge(lvl int, inputs []*run, out *run, hasOutput bool) error {
	db.mu.Lock()
	lv := db.levels[lvl]
	db.levels[lvl] = append([]*run(nil), lv[len(inputs):]...)
	if hasOutput {
		for len(db.levels) <= lvl+1 {
			db.levels = append(db.levels, nil)
		}
		db.levels[lvl+1] = append(db.levels[lvl+1], out)
		out.live, out.pins = true, 1
	}
	for _, in := range inputs {
		in.live = false
	}
	db.version++
	db.mu.Unlock()

	db.sealMu.Lock()
	err := db.writeCurrentLocked(false)
	db.sealMu.Unlock()
	if err != nil {
		// The old CURRENT still names the inputs: keep their files.
		return err
	}
	db.mu.Lock()
	dead := db.unpinLocked(inputs)
	db.mu.Unlock()
	db.removeRuns(dead)
	return nil
}
