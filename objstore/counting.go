package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Counting wraps a Store and counts its operations and bytes, for tests and
// benchmarks that assert how much traffic a protocol causes. With logging on
// (SetLogging) it also records one line per operation, so a protocol test can
// compare the exact sequence of requests:
//
//	PUT runs/x 123 if-absent
//	PUT manifests/00000000000000000002 512 if-absent (exists)
//	GET manifests/00000000000000000002
//	RANGE runs/x 0+4096
//	HEAD runs/x (not found)
//	LIST runs/
//	DELETE runs/x
//
// A failed operation gets " (exists)" for ErrPrecondition, " (not found)"
// for ErrNotExist and " (error)" for anything else. Counting is safe for
// concurrent use; lines of concurrent operations appear in completion order.
type Counting struct {
	s Store

	puts, putIfAbsent, gets, getRanges, heads, lists, deletes atomic.Int64
	bytesPut, bytesGot, errs, preconditionFails, notFound     atomic.Int64

	mu struct {
		sync.Mutex
		logging bool
		log     []string
	}
}

var _ Store = (*Counting)(nil)

// CountingStats is a snapshot of a Counting's counters.
type CountingStats struct {
	// Puts counts every Put call, IfAbsent ones included.
	Puts int64
	// PutIfAbsent counts the Put calls with IfAbsent set.
	PutIfAbsent int64
	// Gets counts Get calls; GetRanges counts GetRange calls.
	Gets, GetRanges int64
	// Heads, Lists and Deletes count those calls.
	Heads, Lists, Deletes int64
	// BytesPut is the total size of successful Puts.
	BytesPut int64
	// BytesGot is the total number of bytes read from the bodies returned by
	// Get and GetRange.
	BytesGot int64
	// Errors counts calls that returned an error, including the two below.
	Errors int64
	// PreconditionFailed counts Puts that lost with ErrPrecondition.
	PreconditionFailed int64
	// NotFound counts calls that returned ErrNotExist.
	NotFound int64
}

// Ops returns the total number of calls.
func (s CountingStats) Ops() int64 {
	return s.Puts + s.Gets + s.GetRanges + s.Heads + s.Lists + s.Deletes
}

// NewCounting wraps s. Logging starts off.
func NewCounting(s Store) *Counting { return &Counting{s: s} }

// Stats returns the current counters.
func (c *Counting) Stats() CountingStats {
	return CountingStats{
		Puts: c.puts.Load(), PutIfAbsent: c.putIfAbsent.Load(),
		Gets: c.gets.Load(), GetRanges: c.getRanges.Load(),
		Heads: c.heads.Load(), Lists: c.lists.Load(), Deletes: c.deletes.Load(),
		BytesPut: c.bytesPut.Load(), BytesGot: c.bytesGot.Load(),
		Errors: c.errs.Load(), PreconditionFailed: c.preconditionFails.Load(), NotFound: c.notFound.Load(),
	}
}

// Reset zeroes the counters and clears the log.
func (c *Counting) Reset() {
	for _, v := range []*atomic.Int64{&c.puts, &c.putIfAbsent, &c.gets, &c.getRanges, &c.heads, &c.lists,
		&c.deletes, &c.bytesPut, &c.bytesGot, &c.errs, &c.preconditionFails, &c.notFound} {
		v.Store(0)
	}
	c.mu.Lock()
	c.mu.log = nil
	c.mu.Unlock()
}

// SetLogging turns the operation log on or off. The log grows without bound
// while on; use it in tests, not in long runs.
func (c *Counting) SetLogging(on bool) {
	c.mu.Lock()
	c.mu.logging = on
	c.mu.Unlock()
}

// Log returns a copy of the operation log.
func (c *Counting) Log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.mu.log...)
}

// Unwrap returns the wrapped store.
func (c *Counting) Unwrap() Store { return c.s }

// done counts an outcome and appends line to the log.
func (c *Counting) done(line string, err error) {
	if err != nil {
		c.errs.Add(1)
		switch {
		case errors.Is(err, ErrPrecondition):
			c.preconditionFails.Add(1)
			line += " (exists)"
		case errors.Is(err, ErrNotExist):
			c.notFound.Add(1)
			line += " (not found)"
		default:
			line += " (error)"
		}
	}
	c.mu.Lock()
	if c.mu.logging {
		c.mu.log = append(c.mu.log, line)
	}
	c.mu.Unlock()
}

// Put implements Store.
func (c *Counting) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error {
	c.puts.Add(1)
	line := fmt.Sprintf("PUT %s %d", key, size)
	if opts.IfAbsent {
		c.putIfAbsent.Add(1)
		line += " if-absent"
	}
	err := c.s.Put(ctx, key, r, size, opts)
	if err == nil {
		c.bytesPut.Add(size)
	}
	c.done(line, err)
	return err
}

// Get implements Store.
func (c *Counting) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	c.gets.Add(1)
	rc, info, err := c.s.Get(ctx, key)
	c.done("GET "+key, err)
	if err != nil {
		return nil, info, err
	}
	return &countingReader{rc: rc, n: &c.bytesGot}, info, nil
}

// GetRange implements Store.
func (c *Counting) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	c.getRanges.Add(1)
	rc, err := c.s.GetRange(ctx, key, offset, length)
	line := fmt.Sprintf("RANGE %s %d+%d", key, offset, length)
	if length < 0 {
		line = fmt.Sprintf("RANGE %s %d+", key, offset)
	}
	c.done(line, err)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc: rc, n: &c.bytesGot}, nil
}

// Head implements Store.
func (c *Counting) Head(ctx context.Context, key string) (ObjectInfo, error) {
	c.heads.Add(1)
	info, err := c.s.Head(ctx, key)
	c.done("HEAD "+key, err)
	return info, err
}

// List implements Store.
func (c *Counting) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	c.lists.Add(1)
	infos, err := c.s.List(ctx, prefix)
	c.done("LIST "+prefix, err)
	return infos, err
}

// Delete implements Store.
func (c *Counting) Delete(ctx context.Context, key string) error {
	c.deletes.Add(1)
	err := c.s.Delete(ctx, key)
	c.done("DELETE "+key, err)
	return err
}

// Close closes the wrapped store.
func (c *Counting) Close() error { return c.s.Close() }

type countingReader struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.n.Add(int64(n))
	return n, err
}

func (r *countingReader) Close() error { return r.rc.Close() }
