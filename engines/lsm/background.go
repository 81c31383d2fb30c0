package lsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tierkv/tierkv/engines"
)

// Retry delays after a failed background flush or merge.
const (
	minRetryDelay = 50 * time.Millisecond
	maxRetryDelay = 10 * time.Second
)

// errMergeAborted stops a merge when the DB closes.
var errMergeAborted = errors.New("lsm: merge aborted by close")

// flushLoop writes frozen memtables as runs until Close. A failed flush is
// also made visible to writers waiting for room (bgErr).
func (d *DB) flushLoop() {
	d.backgroundLoop("flush", d.flushCh, func() (bool, error) {
		d.flushMu.Lock()
		did, err := d.flushOldest()
		d.flushMu.Unlock()
		if err != nil {
			d.mu.Lock()
			d.mu.bgErr = err
			d.mu.cond.Broadcast()
			d.mu.Unlock()
		}
		return did, err
	})
}

// mergeLoop merges over-full levels until Close.
func (d *DB) mergeLoop() {
	d.backgroundLoop("merge", d.mergeCh, d.mergeOnce)
}

// backgroundLoop runs step whenever wake fires, repeating it while it did
// something, until Close. A failing step is retried after a delay that
// doubles from minRetryDelay to maxRetryDelay; errMergeAborted ends the loop.
func (d *DB) backgroundLoop(name string, wake <-chan struct{}, step func() (did bool, err error)) {
	defer d.wg.Done()
	delay := minRetryDelay
	var retry <-chan time.Time
	for {
		select {
		case <-d.stop:
			return
		case <-wake:
		case <-retry:
		}
		retry = nil
		for {
			did, err := step()
			if errors.Is(err, errMergeAborted) {
				return
			}
			if err != nil {
				d.log.Error("lsm: background "+name+" failed", "err", err, "retry_in", delay)
				retry = time.After(delay)
				delay = min(2*delay, maxRetryDelay)
				break
			}
			if !did {
				delay = minRetryDelay
				break
			}
			select {
			case <-d.stop:
				return
			default:
			}
		}
	}
}

// mergeOnce merges every run of the shallowest level holding more than
// max_runs_per_level runs into one run at the next level. did is false when
// no level is over-full.
func (d *DB) mergeOnce() (did bool, err error) {
	d.v.Lock()
	if d.v.closed {
		d.v.Unlock()
		return false, nil
	}
	lvl := -1
	for i, l := range d.v.levels {
		if len(l) > d.params.MaxRunsPerLevel {
			lvl = i
			break
		}
	}
	if lvl < 0 {
		d.v.Unlock()
		return false, nil
	}
	inputs := slices.Clone(d.v.levels[lvl])
	for _, r := range inputs {
		r.ref()
	}
	bottom := true
	for _, l := range d.v.levels[lvl+1:] {
		if len(l) > 0 {
			bottom = false
		}
	}
	d.v.Unlock()
	defer func() {
		for _, r := range inputs {
			r.unref()
		}
	}()

	start := time.Now()
	out, err := d.buildRun(func(b *runBuilder) error { return d.mergeInto(b, inputs, bottom) })
	if err != nil {
		return false, fmt.Errorf("merge level %d: %w", lvl, err)
	}

	d.v.Lock()
	levels := slices.Clone(d.v.levels)
	cur := levels[lvl]
	// Only this goroutine removes runs from a level and flushes only prepend
	// to level 0, so the inputs are still the level's oldest runs.
	if len(cur) < len(inputs) || !sameRuns(cur[len(cur)-len(inputs):], inputs) {
		d.v.Unlock()
		if out != nil {
			d.discard(out)
		}
		return false, fmt.Errorf("merge level %d: inputs changed under the merge", lvl)
	}
	levels[lvl] = slices.Clone(cur[:len(cur)-len(inputs)])
	if out != nil {
		if len(levels) == lvl+1 {
			levels = append(levels, nil)
		}
		levels[lvl+1] = append([]*run{out}, levels[lvl+1]...)
	}
	levels = trimLevels(levels)
	if err := d.writeCurrent(levels); err != nil {
		d.v.Unlock()
		if out != nil {
			d.abandon(out)
		}
		return false, fmt.Errorf("merge level %d: %w", lvl, err)
	}
	if out != nil && d.lis.RunSealed != nil {
		d.lis.RunSealed(out.info)
	}
	d.v.levels = levels
	d.mu.Lock()
	old := d.installReadStateLocked(levels)
	d.mu.Unlock()
	d.v.Unlock()
	old.unref()
	for _, r := range inputs {
		r.obsolete.Store(true)
		r.unref() // the live set's reference
	}
	d.merges.Add(1)
	outName, outSize := "", int64(0)
	if out != nil {
		outName, outSize = out.info.Name, out.info.Size
	}
	d.log.Debug("lsm: merged level", "level", lvl, "inputs", len(inputs), "output", outName,
		"bytes", outSize, "bottom", bottom, "took", time.Since(start))
	return true, nil
}

// mergeInto k-way merges inputs (newest first) into b. For equal keys the
// newest record wins; tombstones are dropped when dropTombstones.
func (d *DB) mergeInto(b *runBuilder, inputs []*run, dropTombstones bool) error {
	h := make(mergeHeap, 0, len(inputs))
	for i, r := range inputs {
		it := newRunIter(r)
		if !it.next() {
			if it.err != nil {
				return it.err
			}
			continue
		}
		h = append(h, &mergeSource{it: it, rank: i})
	}
	h.init()
	var key []byte
	for n := 0; len(h) > 0; n++ {
		if n%4096 == 0 {
			select {
			case <-d.stop:
				return errMergeAborted
			default:
			}
		}
		top := h[0]
		rec := top.it.rec
		if !(dropTombstones && rec.Kind == engines.KindDelete) {
			if err := b.add(rec.Kind, rec.Key, rec.Value); err != nil {
				return err
			}
		}
		key = append(key[:0], rec.Key...)
		if err := h.advance(); err != nil {
			return err
		}
		for len(h) > 0 && bytes.Equal(h[0].it.rec.Key, key) {
			if err := h.advance(); err != nil {
				return err
			}
		}
	}
	return nil
}

type mergeSource struct {
	it   *runIter
	rank int // input position: lower is newer
}

// mergeHeap is a min-heap of sources by (key, rank).
type mergeHeap []*mergeSource

func (h mergeHeap) less(i, j int) bool {
	c := bytes.Compare(h[i].it.rec.Key, h[j].it.rec.Key)
	return c < 0 || c == 0 && h[i].rank < h[j].rank
}

func (h mergeHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h mergeHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// advance moves the top source to its next record, dropping it at its end.
func (h *mergeHeap) advance() error {
	top := (*h)[0]
	if top.it.next() {
		h.down(0)
		return nil
	}
	if top.it.err != nil {
		return top.it.err
	}
	n := len(*h) - 1
	(*h)[0] = (*h)[n]
	*h = (*h)[:n]
	h.down(0)
	return nil
}
