package hybridlog

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
)

// flushLoop is the background flusher: it writes flush segments as they fill
// and whatever writers are waiting for.
func (d *DB) flushLoop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.stop:
			return
		case <-d.flushKick:
		}
		for {
			select {
			case <-d.stop:
				return
			default:
			}
			did, err := d.flushSegment()
			if err != nil {
				d.fail(fmt.Errorf("hybridlog: flush: %w", err))
				break
			}
			if !did {
				break
			}
		}
	}
}

// flushSegment writes the oldest flush segment if it is full (or a writer
// waits for room) and reports whether it wrote one.
func (d *DB) flushSegment() (bool, error) {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.mu.RLock()
	start, limit, urgent, buf, failed := d.mu.flushed, d.mu.readOnly, d.mu.waiters > 0, d.mu.buf, d.mu.bgErr != nil
	d.mu.RUnlock()
	if failed || limit <= start || (limit-start < d.flushLen && !urgent) {
		return false, nil
	}
	// Take whole records starting below the read-only boundary, up to
	// flush_interval bytes. They are immutable, so buf is read unlocked.
	end := start
	for end < limit && end-start < d.flushLen {
		_, klen, vlen := recordHeader(buf, end)
		end += uint64(engines.RecordSize(klen, vlen))
	}
	return true, d.flushRange(buf, start, end)
}

// flushAll makes the whole window read-only and writes everything not yet
// on disk as one run. flushMu must be held.
func (d *DB) flushAll() error {
	d.mu.Lock()
	d.mu.readOnly = d.mu.tail
	start, end, buf, err := d.mu.flushed, d.mu.tail, d.mu.buf, d.mu.bgErr
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if end == start {
		return nil
	}
	return d.flushRange(buf, start, end)
}

// flushRange writes the records at [start, end) of ring buf as a log run
// with its hint file, records it in CURRENT and publishes it. flushMu held.
func (d *DB) flushRange(buf []byte, start, end uint64) error {
	hint := appendHintHeader(nil, false, start)
	var count uint64
	var key []byte
	for a := start; a < end; {
		kind, klen, vlen := recordHeader(buf, a)
		if cap(key) < klen {
			key = make([]byte, klen)
		}
		key = key[:klen]
		ringRead(buf, key, a+engines.RecordHeaderSize)
		hint = appendHintEntry(hint, kind, key, vlen)
		a += uint64(engines.RecordSize(klen, vlen))
		count++
	}
	hint = finishHint(hint, end-start, count)
	name := d.namer.Next(extRun)
	w, err := engines.CreateRun(d.o.FS, d.o.Dir, name)
	if err != nil {
		return err
	}
	p, q := int(start%uint64(len(buf))), int(end%uint64(len(buf)))
	var werr error
	if n := end - start; uint64(p)+n <= uint64(len(buf)) {
		_, werr = w.Write(buf[p : uint64(p)+n])
	} else {
		if _, werr = w.Write(buf[p:]); werr == nil {
			_, werr = w.Write(buf[:q])
		}
	}
	if werr == nil {
		_, werr = w.Write(appendFooter(nil, footer{dataLen: end - start, count: count, start: start}))
	}
	if werr != nil {
		w.Abort()
		return werr
	}
	r, err := d.sealRun(w, hint, false, start, end-start)
	if err != nil {
		return err
	}
	// Publish: CURRENT first, then the new durable boundary.
	d.runs.Lock()
	if len(d.runs.levels) == 0 {
		d.runs.levels = append(d.runs.levels, nil)
	}
	d.runs.levels[0] = append(d.runs.levels[0], r)
	d.runs.nextAddr = end
	if err := d.writeCurrentLocked(); err != nil {
		d.runs.levels[0] = d.runs.levels[0][:len(d.runs.levels[0])-1]
		d.runs.Unlock()
		d.abandon(r)
		return err
	}
	full := len(d.runs.levels[0]) >= d.p.MaxRunsPerLevel
	d.mu.Lock()
	d.mu.slots[r.slot] = r
	d.mu.logRuns = append(d.mu.logRuns, r)
	d.mu.flushed = end
	d.mu.cond.Broadcast()
	d.mu.Unlock()
	d.runs.Unlock()
	d.log.Debug("flushed", "run", r.name, "bytes", end-start, "records", count)
	if full {
		d.requestMerge()
	}
	return nil
}

// sealRun finishes the data file of w, writes its hint file and opens the
// run for reading. The run is not yet live.
func (d *DB) sealRun(w *engines.RunWriter, hint []byte, merged bool, start, dataLen uint64) (*run, error) {
	info, err := w.Finish()
	if err != nil {
		return nil, err
	}
	if d.o.Listener.RunSealed != nil {
		d.o.Listener.RunSealed(info)
	}
	hinfo, err := engines.WriteRun(d.o.FS, d.o.Dir, hintName(info.Name), hint)
	if err != nil {
		d.removeFiles(info.Name)
		return nil, err
	}
	if d.o.Listener.RunSealed != nil {
		d.o.Listener.RunSealed(hinfo)
	}
	f, err := engines.Open(d.o.FS, filepath.Join(d.o.Dir, info.Name))
	if err != nil {
		d.removeFiles(info.Name, hinfo.Name)
		return nil, fmt.Errorf("open run %s: %w", info.Name, err)
	}
	d.mu.Lock()
	slot := d.mu.nextSlot
	d.mu.nextSlot++
	d.mu.Unlock()
	if uint64(slot) > maxSlot {
		f.Close()
		d.removeFiles(info.Name, hinfo.Name)
		return nil, errors.New("run slots exhausted; reopen the engine")
	}
	r := &run{name: info.Name, info: info, hint: hinfo, slot: slot, merged: merged, start: start,
		dataLen: dataLen, f: f, fileID: cache.NewFileID()}
	r.refs.Store(1)
	d.files.Lock()
	d.files.open[r] = struct{}{}
	d.files.Unlock()
	return r, nil
}

func (d *DB) removeFiles(names ...string) {
	for _, n := range names {
		if err := d.o.FS.Remove(filepath.Join(d.o.Dir, n)); err != nil {
			d.log.Warn("remove file", "file", n, "err", err)
		}
	}
}

// abandon drops a run whose publication in CURRENT failed, keeping its
// files: WriteFileAtomic can fail after its rename took effect (the directory
// fsync failed), so CURRENT may name the run. The next Open removes them if
// CURRENT does not.
func (d *DB) abandon(r *run) {
	d.files.Lock()
	delete(d.files.open, r)
	d.files.Unlock()
	r.f.Close()
}

// unref drops one reference; the last one deletes the run's files.
func (d *DB) unref(r *run) {
	if r.refs.Add(-1) != 0 {
		return
	}
	d.files.Lock()
	_, open := d.files.open[r]
	delete(d.files.open, r)
	done := d.files.done
	d.files.Unlock()
	if open {
		r.f.Close()
	}
	if done {
		return // closed: the files stay for the next open
	}
	d.removeFiles(r.name, r.hint.Name)
	d.log.Debug("retired run", "run", r.name)
	if d.o.Listener.RunRetired != nil {
		d.o.Listener.RunRetired(r.name)
		d.o.Listener.RunRetired(r.hint.Name)
	}
}

// Seal makes the whole in-memory window read-only, writes everything not yet
// on disk as one run (with its hint file), waits for the merges that run
// asked for, and returns the checkpoint of the live runs, pinned until
// Release.
func (d *DB) Seal() (engines.Checkpoint, error) {
	d.mu.RLock()
	closed := d.mu.closed
	d.mu.RUnlock()
	if closed {
		return engines.Checkpoint{}, engines.ErrClosed
	}
	d.flushMu.Lock()
	err := d.flushAll()
	d.flushMu.Unlock()
	if err != nil {
		return engines.Checkpoint{}, fmt.Errorf("hybridlog: seal: %w", err)
	}
	d.waitMerges()
	d.mu.RLock()
	closed, err = d.mu.closed, d.mu.bgErr
	d.mu.RUnlock()
	if closed {
		return engines.Checkpoint{}, engines.ErrClosed
	}
	if err != nil {
		return engines.Checkpoint{}, fmt.Errorf("hybridlog: seal: %w", err)
	}
	d.runs.Lock()
	defer d.runs.Unlock()
	cp, runs := d.checkpointLocked()
	for _, r := range runs {
		r.refs.Add(1)
	}
	d.runs.sealSeq++
	cp.Seq = d.runs.sealSeq
	d.runs.pins[cp.Seq] = runs
	return cp, nil
}

// Release unpins the runs of a checkpoint returned by Seal. Releasing twice,
// or after Close, does nothing.
func (d *DB) Release(cp engines.Checkpoint) {
	d.runs.Lock()
	runs := d.runs.pins[cp.Seq]
	delete(d.runs.pins, cp.Seq)
	d.runs.Unlock()
	for _, r := range runs {
		d.unref(r)
	}
}

// Close writes everything not yet on disk (reopening gives the identical
// state), stops the background goroutines and closes the files.
func (d *DB) Close() error {
	d.mu.Lock()
	if d.mu.closed {
		d.mu.Unlock()
		return engines.ErrClosed
	}
	d.mu.closed = true
	d.mu.cond.Broadcast()
	d.mu.Unlock()
	close(d.stop)
	d.wg.Wait()
	d.merges.Lock()
	d.merges.stopped = true
	d.merges.cond.Broadcast()
	d.merges.Unlock()
	d.flushMu.Lock()
	err := d.flushAll()
	d.flushMu.Unlock()
	d.readers.Wait()
	d.runs.Lock()
	d.runs.pins = map[uint64][]*run{}
	d.runs.Unlock()
	d.closeFiles()
	if err != nil {
		return fmt.Errorf("hybridlog: close: %w", err)
	}
	return nil
}

// closeFiles closes every open run file; later unrefs delete nothing.
func (d *DB) closeFiles() {
	d.files.Lock()
	defer d.files.Unlock()
	d.files.done = true
	for r := range d.files.open {
		r.f.Close()
	}
	clear(d.files.open)
}

// requestMerge asks the merger to merge every full level.
func (d *DB) requestMerge() {
	d.merges.Lock()
	d.merges.req++
	d.merges.Unlock()
	select {
	case d.mergeKick <- struct{}{}:
	default:
	}
}

// waitMerges waits until the merges requested so far are done.
func (d *DB) waitMerges() {
	d.merges.Lock()
	defer d.merges.Unlock()
	t := d.merges.req
	for d.merges.done < t && !d.merges.stopped {
		d.merges.cond.Wait()
	}
}
