package hybridlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/tierkv/tierkv/engines"
)

// errStopped aborts a merge when the engine closes.
var errStopped = errors.New("hybridlog: merge stopped by close")

// mergeLoop is the background merger.
func (d *DB) mergeLoop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.stop:
			return
		case <-d.mergeKick:
		}
		d.merges.Lock()
		target := d.merges.req
		d.merges.Unlock()
		for {
			did, err := d.mergeOnce()
			if errors.Is(err, errStopped) {
				return
			}
			if err != nil {
				d.fail(fmt.Errorf("hybridlog: merge: %w", err))
				break
			}
			if !did {
				break
			}
		}
		d.merges.Lock()
		d.merges.done = max(d.merges.done, target)
		d.merges.cond.Broadcast()
		d.merges.Unlock()
	}
}

// keptRec is a record the merge copied: where it was.
type keptRec struct {
	oldPtr uint64 // the index pointer that named it (tombstone bit included)
}

// droppedTomb is a tombstone dropped by a merge that included the oldest data.
type droppedTomb struct {
	key []byte
	ptr uint64
}

// mergeOnce merges the shallowest full level into one run of the next level
// and reports whether it merged.
func (d *DB) mergeOnce() (bool, error) {
	d.runs.Lock()
	li := -1
	for i, l := range d.runs.levels {
		if len(l) >= d.p.MaxRunsPerLevel {
			li = i
			break
		}
	}
	if li < 0 {
		d.runs.Unlock()
		return false, nil
	}
	inputs := append([]*run(nil), d.runs.levels[li]...)
	nothingOlder := true
	for _, l := range d.runs.levels[li+1:] {
		if len(l) > 0 {
			nothingOlder = false
		}
	}
	d.runs.Unlock()

	out, kept, drops, err := d.writeMerged(inputs, nothingOlder)
	if err != nil {
		return false, err
	}

	d.runs.Lock()
	defer d.runs.Unlock()
	d.runs.levels[li] = d.runs.levels[li][len(inputs):]
	if out != nil {
		if li+1 == len(d.runs.levels) {
			d.runs.levels = append(d.runs.levels, nil)
		}
		d.runs.levels[li+1] = append(d.runs.levels[li+1], out)
	}
	for len(d.runs.levels) > 1 && len(d.runs.levels[len(d.runs.levels)-1]) == 0 {
		d.runs.levels = d.runs.levels[:len(d.runs.levels)-1]
	}
	if err := d.writeCurrentLocked(); err != nil {
		// Put the inputs back: they stay live in memory. CURRENT on disk
		// names either them or (if only the directory fsync failed) the
		// output, which therefore keeps its files.
		d.runs.levels[li] = append(inputs, d.runs.levels[li]...)
		if out != nil {
			l := d.runs.levels[li+1]
			d.runs.levels[li+1] = l[:len(l)-1]
			d.abandon(out)
		}
		return false, err
	}
	// The new state is durable: point the index at the merged copies, then
	// retire the inputs.
	if err := d.repointMerged(inputs, out, kept, drops); err != nil {
		return false, err
	}
	var outName string
	if out != nil {
		outName = out.name
	}
	d.log.Debug("merged", "level", li, "inputs", len(inputs), "output", outName, "kept", len(kept), "tombstones_dropped", len(drops))
	for _, r := range inputs {
		d.unref(r)
	}
	return true, nil
}

// repointMerged points the index at the merged copies kept of the inputs (in
// batches, so that writers are not held up), drops the tombstones the merge
// dropped, and takes the inputs out of the lookup tables. CURRENT already
// names out instead of the inputs; runs is locked.
func (d *DB) repointMerged(inputs []*run, out *run, kept []keptRec, drops []droppedTomb) error {
	if out != nil {
		d.mu.Lock()
		d.mu.slots[out.slot] = out
		d.mu.Unlock()
		hb, err := engines.ReadFile(d.o.FS, filepath.Join(d.o.Dir, out.hint.Name))
		if err != nil {
			return fmt.Errorf("reread hint %s: %w", out.hint.Name, err)
		}
		const batch = 4096
		i := 0
		d.mu.Lock()
		_, err = decodeHint(hb, out.hint.Name, func(e hintEntry) {
			if i > 0 && i%batch == 0 {
				d.mu.Unlock()
				d.mu.Lock()
			}
			old := kept[i].oldPtr
			i++
			h := d.mu.idx.hash(e.key)
			if s := d.mu.idx.find(h, e.key); s >= 0 && d.mu.idx.slots[s].ptr == old {
				d.mu.idx.slots[s].ptr = diskPtr(out.slot, e.off) | old&ptrTomb
			}
		})
		d.mu.Unlock()
		if err != nil {
			return err
		}
	}
	d.mu.Lock()
	for _, t := range drops {
		if s := d.mu.idx.find(d.mu.idx.hash(t.key), t.key); s >= 0 && d.mu.idx.slots[s].ptr == t.ptr {
			d.mu.idx.removeSlot(s)
		}
	}
	for _, r := range inputs {
		delete(d.mu.slots, r.slot)
	}
	dead := map[*run]bool{}
	for _, r := range inputs {
		dead[r] = true
	}
	keep := d.mu.logRuns[:0]
	for _, r := range d.mu.logRuns {
		if !dead[r] {
			keep = append(keep, r)
		}
	}
	clear(d.mu.logRuns[len(keep):])
	d.mu.logRuns = keep
	d.mu.Unlock()
	return nil
}

// writeMerged copies the live records of inputs (oldest first) into a new
// run. A record is copied unless a newer record of its key is durable (in a
// run CURRENT names): then no crash can need it. Tombstones the index still
// points at are dropped only when nothingOlder (no run older than the inputs
// exists). It returns nil when nothing survives.
func (d *DB) writeMerged(inputs []*run, nothingOlder bool) (*run, []keptRec, []droppedTomb, error) {
	name := d.namer.Next(extRun)
	w, err := engines.CreateRun(d.o.FS, d.o.Dir, name)
	if err != nil {
		return nil, nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			w.Abort()
		}
	}()
	hint := appendHintHeader(nil, true, 0)
	var kept []keptRec
	var drops []droppedTomb
	var off uint64
	rec := make([]byte, 0, 4096)
	for _, r := range inputs {
		br := bufio.NewReaderSize(io.NewSectionReader(r.f, 0, int64(r.dataLen)), 1<<20)
		for pos := uint64(0); pos < r.dataLen; {
			select {
			case <-d.stop:
				return nil, nil, nil, errStopped
			default:
			}
			var n int
			rec, n, err = readRecordAt(br, rec, r, pos)
			if err != nil {
				return nil, nil, nil, err
			}
			kind := rec[4]
			key := rec[engines.RecordHeaderSize : engines.RecordHeaderSize+int(binary.LittleEndian.Uint16(rec[5:]))]
			loc := r.loc(pos)
			ptr := loc
			if kind == engines.KindDelete {
				ptr |= ptrTomb
			}
			d.mu.RLock()
			cur, found := d.mu.idx.get(key)
			durable := cur&ptrDisk != 0 || ptrLoc(cur) < d.mu.flushed
			d.mu.RUnlock()
			keep := false
			switch {
			case !found:
			case ptrLoc(cur) == loc:
				if kind == engines.KindDelete && nothingOlder {
					drops = append(drops, droppedTomb{key: append([]byte(nil), key...), ptr: ptr})
				} else {
					keep = true
				}
			case !durable:
				keep = true
			}
			if keep {
				if _, err := w.Write(rec[:n]); err != nil {
					return nil, nil, nil, err
				}
				hint = appendHintEntry(hint, kind, key, n-engines.RecordHeaderSize-len(key))
				kept = append(kept, keptRec{oldPtr: ptr})
				off += uint64(n)
			}
			pos += uint64(n)
		}
	}
	if len(kept) == 0 {
		return nil, nil, drops, nil
	}
	if _, err := w.Write(appendFooter(nil, footer{dataLen: off, count: uint64(len(kept)), merged: true})); err != nil {
		return nil, nil, nil, err
	}
	hint = finishHint(hint, off, uint64(len(kept)))
	ok = true
	out, err := d.sealRun(w, hint, true, 0, off)
	if err != nil {
		return nil, nil, nil, err
	}
	return out, kept, drops, nil
}

// readRecordAt reads the record at pos of r from br into buf and checks it.
func readRecordAt(br *bufio.Reader, buf []byte, r *run, pos uint64) ([]byte, int, error) {
	buf = buf[:engines.RecordHeaderSize]
	if _, err := io.ReadFull(br, buf); err != nil {
		return buf, 0, fmt.Errorf("read run %s at %d: %w", r.name, pos, err)
	}
	_, klen, vlen, bad, _ := engines.DecodeRecordHeader(buf)
	if bad != "" {
		return buf, 0, engines.Corruptf(r.name, int64(pos), "%s", bad)
	}
	n := engines.RecordSize(klen, vlen)
	if pos+uint64(n) > r.dataLen {
		return buf, 0, engines.Corruptf(r.name, int64(pos), "record runs past the run data")
	}
	if cap(buf) < n {
		nb := make([]byte, n)
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf[engines.RecordHeaderSize:]); err != nil {
		return buf, 0, fmt.Errorf("read run %s at %d: %w", r.name, pos, err)
	}
	if _, _, err := engines.DecodeRecord(buf, r.name, int64(pos)); err != nil {
		return buf, 0, err
	}
	return buf, n, nil
}
