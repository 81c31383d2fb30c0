package tiered

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// Remote key prefixes of the GC protocol (see "Writers and GC" in the
// package doc).
const (
	leasePrefix = "leases/"
	sweepPrefix = "gc/"
)

// Defaults of the GC protocol.
const (
	// DefaultLeaseTTL is the default of Options.LeaseTTL.
	DefaultLeaseTTL = time.Hour
	// sweepTimeout bounds a GC sweep's deletions: none happens after its
	// record's deadline.
	sweepTimeout = 2 * time.Minute
	// clockMargin is the clock skew tolerated between writers, GC passes
	// and the object store's modification times.
	clockMargin = time.Minute
	// maxRemoteDescriptor bounds what the lease and sweep decoders read.
	maxRemoteDescriptor = 64 << 20
)

// sweepRetention is how long GC keeps sweep records: a writer that
// accounted for sweeps within half of it learns of every later sweep from
// the records alone; one that did not re-lists runs/.
const sweepRetention = 2 * time.Hour

// lease is the object leases/<id>: the runs a live writer's next commit may
// name, which GC does not delete until the lease expires.
type lease struct {
	FormatVersion int       `json:"format_version"`
	WriterID      string    `json:"writer_id"`
	StoreID       string    `json:"store_id"`
	Written       time.Time `json:"written"`
	Expires       time.Time `json:"expires"`
	Runs          []string  `json:"runs"`
	Checksum      string    `json:"checksum"`
}

func (l *lease) checksum() *string { return &l.Checksum }

func (l *lease) validate() error {
	if l.WriterID == "" || !l.Expires.After(l.Written) {
		return fmt.Errorf("lease of writer %q expires %s, not after it was written (%s)", l.WriterID, l.Expires, l.Written)
	}
	return checkRunNames(l.Runs)
}

// sweep is the object gc/<20-digit unix nanoseconds>-<nonce> a GC pass
// writes before it deletes anything, and rewrites with Done once finished.
type sweep struct {
	FormatVersion int       `json:"format_version"`
	Started       time.Time `json:"started"`
	Deadline      time.Time `json:"deadline"`
	Done          bool      `json:"done"`
	// Candidates may be deleted by the pass; Deleted were (once Done).
	Candidates []string `json:"candidates"`
	Deleted    []string `json:"deleted,omitempty"`
	Checksum   string   `json:"checksum"`
}

func (w *sweep) checksum() *string { return &w.Checksum }

func (w *sweep) validate() error {
	if !w.Deadline.After(w.Started) {
		return fmt.Errorf("sweep deadline %s is not after its start %s", w.Deadline, w.Started)
	}
	if err := checkRunNames(w.Candidates); err != nil {
		return err
	}
	return checkRunNames(w.Deleted)
}

// affected returns the runs the sweep deleted, or may have deleted if it is
// not done.
func (w *sweep) affected() []string {
	if w.Done {
		return w.Deleted
	}
	return w.Candidates
}

func checkRunNames(names []string) error {
	for _, n := range names {
		if err := manifest.CheckRunName(n); err != nil {
			return err
		}
	}
	return nil
}

// decodeLease and decodeSweep decode remote descriptors; errors match
// engines.ErrCorrupt and name the object.
func decodeLease(key string, b []byte) (*lease, error) {
	l := new(lease)
	if err := decodeDescriptor(key, b, l, &l.FormatVersion); err != nil {
		return nil, err
	}
	return l, nil
}

func decodeSweep(key string, b []byte) (*sweep, error) {
	w := new(sweep)
	if err := decodeDescriptor(key, b, w, &w.FormatVersion); err != nil {
		return nil, err
	}
	return w, nil
}

// putDescriptor writes d under key (replacing it unless ifAbsent). A
// replacing write is idempotent and retried on transient errors; a create
// is not (a lost reply would then look like a conflict).
func putDescriptor(ctx context.Context, st objstore.Store, key string, d descriptor, format *int, ifAbsent bool) error {
	*format = storeFormatVersion
	b, err := encodeDescriptor(key, d)
	if err != nil {
		return err
	}
	put := func(ctx context.Context) error {
		return st.Put(ctx, key, bytes.NewReader(b), int64(len(b)), objstore.PutOptions{IfAbsent: ifAbsent})
	}
	if ifAbsent {
		return put(ctx)
	}
	return objstore.Retry(ctx, retryOptions, put)
}

// getDescriptor reads key and decodes it. A transient failure, also while
// reading the body, is retried whole.
func getDescriptor[T any](ctx context.Context, st objstore.Store, key string, decode func(string, []byte) (T, error)) (T, error) {
	var b []byte
	err := objstore.Retry(ctx, retryOptions, func(ctx context.Context) error {
		rc, _, err := st.Get(ctx, key)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err = io.ReadAll(io.LimitReader(rc, maxRemoteDescriptor+1))
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(key, b)
}

// sweepKey names a sweep record started at t; keys sort by start time.
func sweepKey(t time.Time) string {
	return fmt.Sprintf("%s%020d-%s", sweepPrefix, t.UnixNano(), manifest.NewID(4))
}

// liveLeaseRuns returns the runs named by the leases of st that have not
// expired at now. An unreadable lease fails the call: GC cannot know what it
// protects. Leases that expired more than ttl ago are returned in stale.
func liveLeaseRuns(ctx context.Context, st objstore.Store, now time.Time) (live map[string]bool, stale []string, err error) {
	objs, err := st.List(ctx, leasePrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("list leases: %w", err)
	}
	live = make(map[string]bool)
	for _, obj := range objs {
		l, err := getDescriptor(ctx, st, obj.Key, decodeLease)
		if errors.Is(err, objstore.ErrNotExist) {
			continue // its writer closed meanwhile
		}
		if err != nil {
			return nil, nil, fmt.Errorf("lease %s cannot be read, so the runs it protects are unknown (delete it only if its writer is gone): %w", obj.Key, err)
		}
		if now.Before(l.Expires) {
			for _, r := range l.Runs {
				live[r] = true
			}
		} else if now.Sub(l.Expires) > l.Expires.Sub(l.Written) {
			stale = append(stale, obj.Key)
		}
	}
	return live, stale, nil
}

// guard is a writer's side of the GC protocol: its lease and what it has
// learnt from sweep records. It is used under Store.snapMu.
type guard struct {
	st      objstore.Store
	key     string // leases/<id>
	ttl     time.Duration
	writer  string
	storeID string

	leased    []string  // runs of the lease in place (sorted)
	written   time.Time // when it was written; zero: none
	checked   time.Time // when sweeps were last accounted for (Open's listing counts)
	processed map[string]bool
}

func newGuard(st objstore.Store, id, writer string, ttl time.Duration, listed time.Time) *guard {
	return &guard{st: st, key: leasePrefix + id, ttl: ttl, writer: writer, checked: listed, processed: make(map[string]bool)}
}

// cover makes the lease name runs (sorted) with at least half its ttl left.
func (g *guard) cover(ctx context.Context, runs []string) error {
	if g.written.IsZero() || time.Since(g.written) > g.ttl/2 || !slices.Equal(g.leased, runs) {
		now := time.Now()
		l := &lease{WriterID: g.writer, StoreID: g.storeID, Written: now.UTC(), Expires: now.Add(g.ttl).UTC(), Runs: runs}
		if err := putDescriptor(ctx, g.st, g.key, l, &l.FormatVersion, false); err != nil {
			return fmt.Errorf("write lease %s: %w", g.key, err)
		}
		g.leased, g.written = runs, now
	}
	return nil
}

// fresh reports whether the lease still has half its ttl left, so that a
// commit made now is covered by it.
func (g *guard) fresh() bool { return !g.written.IsZero() && time.Since(g.written) <= g.ttl/2 }

// lost returns the runs a GC sweep may have deleted since the last check:
// those deleted by sweeps not yet processed (after waiting for a running
// sweep to finish or pass its deadline) and, when the last check is older
// than half the sweep records' retention, those among want that a listing
// of runs/ does not show. The caller must treat every one as absent from
// the remote from now on (not only those in want: a later checkpoint may
// name them). Call it after cover.
func (g *guard) lost(ctx context.Context, want []string) ([]string, error) {
	start := time.Now()
	var out []string
	if time.Since(g.checked) > sweepRetention/2 {
		objs, err := g.st.List(ctx, manifest.RunPrefix)
		if err != nil {
			return nil, fmt.Errorf("list runs to re-verify them: %w", err)
		}
		have := make(map[string]bool, len(objs))
		for _, o := range objs {
			have[strings.TrimPrefix(o.Key, manifest.RunPrefix)] = true
		}
		for _, r := range want {
			if !have[r] {
				out = append(out, r)
			}
		}
	}
	objs, err := g.st.List(ctx, sweepPrefix)
	if err != nil {
		return nil, fmt.Errorf("list gc sweeps: %w", err)
	}
	seen := make(map[string]bool, len(objs))
	for _, obj := range objs {
		seen[obj.Key] = true
		if g.processed[obj.Key] {
			continue
		}
		if obj.LastModified.Add(sweepTimeout + clockMargin).Before(g.checked) {
			// Every deletion of that sweep happened before the last check
			// (at Open: before the listing of runs/ that marked what is
			// present), so it is accounted for already.
			g.processed[obj.Key] = true
			continue
		}
		w, err := g.settledSweep(ctx, obj.Key)
		if errors.Is(err, objstore.ErrNotExist) {
			continue // expired and removed meanwhile: older than any run we hold unchecked
		}
		if err != nil {
			return nil, err
		}
		out = append(out, w.affected()...)
		g.processed[obj.Key] = true
	}
	for k := range g.processed {
		if !seen[k] {
			delete(g.processed, k)
		}
	}
	g.checked = start
	slices.Sort(out)
	return slices.Compact(out), nil
}

// settledSweep reads the sweep record at key, waiting (polling) until it is
// done or past its deadline.
func (g *guard) settledSweep(ctx context.Context, key string) (*sweep, error) {
	delay := 20 * time.Millisecond
	for {
		w, err := getDescriptor(ctx, g.st, key, decodeSweep)
		switch {
		case errors.Is(err, objstore.ErrNotExist):
			return nil, err
		case err != nil && !objstore.Retryable(err):
			return nil, fmt.Errorf("read gc sweep %s: %w", key, err)
		case err == nil && (w.Done || time.Now().After(w.Deadline)):
			return w, nil
		}
		// Running (or unreadable for now): poll until it is done or past
		// its deadline; ctx bounds the wait.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for gc sweep %s to finish: %w", key, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// release deletes the lease (at Close): its runs are no longer protected.
func (g *guard) release(ctx context.Context) error {
	if g.written.IsZero() {
		return nil
	}
	g.written = time.Time{}
	return g.st.Delete(ctx, g.key)
}
