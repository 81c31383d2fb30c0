package uploader

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// Errors of the uploader; compare with errors.Is.
var (
	// ErrClosed: the uploader was closed before the run became durable.
	ErrClosed = errors.New("uploader: closed")
	// ErrUnknownRun: Wait was asked for a run that is neither present nor
	// enqueued.
	ErrUnknownRun = errors.New("uploader: run neither present nor enqueued")
	// ErrMismatch: the remote already holds an object under the run's key
	// with another size or checksum. It is permanent.
	ErrMismatch = errors.New("uploader: remote object differs from the local run")
)

// Stats are cumulative counters of an Uploader.
type Stats struct {
	// Uploads counts runs made durable: uploaded, or found in the remote with
	// the same size and checksum after a lost reply.
	Uploads int64
	// Bytes counts the bytes sent by successful uploads.
	Bytes int64
	// Retries counts attempts that failed transiently and were retried.
	Retries int64
	// Failures counts runs that failed permanently.
	Failures int64
	// QueueDepth is the number of runs waiting for a worker now.
	QueueDepth int
}

// Uploader uploads sealed runs in the background. See the package
// documentation.
type Uploader struct {
	store   objstore.Store
	opts    Options
	log     *slogLogger
	metrics *metrics
	queue   chan *entry

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers
	send   sync.WaitGroup // Enqueue calls between registering a run and queueing it

	uploads, bytes, retries, failures atomic.Int64
	depth                             atomic.Int64

	mu struct {
		sync.Mutex
		runs   map[string]*entry
		closed bool
	}
}

// entry is one run the uploader knows about.
type entry struct {
	run      engines.RunInfo
	path     string
	enqueued time.Time
	done     chan struct{} // closed once settled
	// Guarded by Uploader.mu; err is readable without it once done is closed.
	settled bool
	err     error // nil: durable in the remote
}

// New starts an uploader over store with opts.Concurrency workers. It
// returns an error for invalid options or when the metrics cannot be
// registered.
func New(store objstore.Store, opts Options) (*Uploader, error) {
	if store == nil {
		return nil, errors.New("uploader: nil object store")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.EnsureDefaults()
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("uploader: register metrics: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &Uploader{
		store:   store,
		opts:    opts,
		log:     &slogLogger{opts.Logger},
		metrics: m,
		queue:   make(chan *entry, opts.QueueSize),
		ctx:     ctx,
		cancel:  cancel,
	}
	u.mu.runs = make(map[string]*entry)
	u.wg.Add(opts.Concurrency)
	for range opts.Concurrency {
		go u.worker()
	}
	return u, nil
}

// Enqueue schedules the upload of a sealed local run (path is the local file)
// to manifest.RunKey(run.Name). Runs already known present (MarkPresent or an
// earlier upload) or in flight are not uploaded twice; a run whose upload
// failed is tried again from the start. Enqueue blocks while the queue is
// full. After Close the run is recorded as failed with ErrClosed.
func (u *Uploader) Enqueue(run engines.RunInfo, path string) {
	e := &entry{run: run, path: path, enqueued: time.Now(), done: make(chan struct{})}
	u.mu.Lock()
	if old, ok := u.mu.runs[run.Name]; ok && (!old.settled || old.err == nil) {
		u.mu.Unlock()
		if old.run.Size != run.Size {
			u.log.warn("run enqueued again with another size; ignored",
				"run", run.Name, "size", run.Size, "known_size", old.run.Size)
		}
		return
	}
	u.mu.runs[run.Name] = e
	if u.mu.closed {
		u.settleLocked(e, fmt.Errorf("upload run %s: %w", run.Name, ErrClosed))
		u.mu.Unlock()
		return
	}
	if err := manifest.CheckRunName(run.Name); err != nil {
		u.settleLocked(e, fmt.Errorf("uploader: upload run %q: %w", run.Name, err))
		u.mu.Unlock()
		u.failures.Add(1)
		u.metrics.failures.Inc()
		return
	}
	u.send.Add(1)
	u.mu.Unlock()
	defer u.send.Done()

	u.depth.Add(1)
	u.metrics.queue.Inc()
	select {
	case u.queue <- e:
	case <-u.ctx.Done():
		u.depth.Add(-1)
		u.metrics.queue.Dec()
		u.settle(e, fmt.Errorf("upload run %s: %w", run.Name, ErrClosed))
	}
}

// MarkPresent records runs the remote already holds (learnt from a listing at
// open). Waiters on a queued run that is marked present are released, and
// the run is not uploaded.
func (u *Uploader) MarkPresent(runs ...engines.RunInfo) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, r := range runs {
		if e, ok := u.mu.runs[r.Name]; ok {
			if !e.settled {
				u.settleLocked(e, nil)
				continue
			}
			if e.err == nil {
				continue
			}
		}
		e := &entry{run: r, done: make(chan struct{})}
		u.settleLocked(e, nil)
		u.mu.runs[r.Name] = e
	}
}

// Present reports whether the run is known to be durable in the remote.
func (u *Uploader) Present(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.mu.runs[name]
	return ok && e.settled && e.err == nil
}

// Wait blocks until every named run is durable in the remote; it enqueues
// nothing itself. It returns the first permanent error among them (in the
// order waited on), an error matching ErrUnknownRun for a run that is neither
// present nor enqueued (checked before waiting), or ctx.Err().
func (u *Uploader) Wait(ctx context.Context, names []string) error {
	entries := make([]*entry, len(names))
	u.mu.Lock()
	for i, name := range names {
		e, ok := u.mu.runs[name]
		if !ok {
			u.mu.Unlock()
			return fmt.Errorf("uploader: wait for run %s: %w", name, ErrUnknownRun)
		}
		entries[i] = e
	}
	u.mu.Unlock()
	for _, e := range entries {
		select {
		case <-e.done:
			if e.err != nil {
				return e.err
			}
		case <-ctx.Done():
			return fmt.Errorf("uploader: wait for run %s: %w", e.run.Name, ctx.Err())
		}
	}
	return nil
}

// Stats returns the uploader's counters.
func (u *Uploader) Stats() Stats {
	return Stats{
		Uploads:    u.uploads.Load(),
		Bytes:      u.bytes.Load(),
		Retries:    u.retries.Load(),
		Failures:   u.failures.Load(),
		QueueDepth: int(u.depth.Load()),
	}
}

// Close cancels queued and in-flight uploads (their waiters get ErrClosed),
// and returns once every goroutine of the uploader has stopped. Runs already
// durable stay Present. It does not close the object store. Calling Close
// again is a no-op.
func (u *Uploader) Close() {
	u.mu.Lock()
	if u.mu.closed {
		u.mu.Unlock()
		return
	}
	u.mu.closed = true
	u.mu.Unlock()

	u.cancel()
	u.send.Wait() // no Enqueue can put anything in the queue after this
	u.wg.Wait()
	for {
		select {
		case e := <-u.queue:
			u.depth.Add(-1)
			u.metrics.queue.Dec()
			u.settle(e, fmt.Errorf("upload run %s: %w", e.run.Name, ErrClosed))
			continue
		default:
		}
		break
	}
}

// settle records the outcome of e and releases its waiters, once.
func (u *Uploader) settle(e *entry, err error) {
	u.mu.Lock()
	u.settleLocked(e, err)
	u.mu.Unlock()
}

func (u *Uploader) settleLocked(e *entry, err error) {
	if e.settled {
		return
	}
	e.settled = true
	e.err = err
	close(e.done)
}

func (u *Uploader) worker() {
	defer u.wg.Done()
	for {
		select {
		case <-u.ctx.Done():
			return
		case e := <-u.queue:
			u.depth.Add(-1)
			u.metrics.queue.Dec()
			u.process(e)
		}
	}
}

// process uploads one run with retries and records the outcome.
func (u *Uploader) process(e *entry) {
	u.mu.Lock()
	skip := e.settled // marked present while queued
	u.mu.Unlock()
	if skip {
		return
	}
	if u.ctx.Err() != nil { // dequeued while closing
		u.settle(e, fmt.Errorf("upload run %s: %w", e.run.Name, ErrClosed))
		return
	}
	start := time.Now()
	var sent int64
	b := u.opts.backoff()
	b.OnRetry = func(attempt int, err error, sleep time.Duration) {
		u.retries.Add(1)
		u.metrics.retries.Inc()
		u.log.debug("retrying run upload", "run", e.run.Name, "attempt", attempt, "sleep", sleep, "err", err)
	}
	err := objstore.Retry(u.ctx, b, func(ctx context.Context) error {
		var err error
		sent, err = u.uploadOnce(ctx, e)
		return err
	})
	if err == nil {
		now := time.Now()
		u.uploads.Add(1)
		u.bytes.Add(sent)
		u.metrics.uploads.Inc()
		u.metrics.bytes.Add(float64(sent))
		u.metrics.duration.Observe(now.Sub(start).Seconds())
		u.metrics.lag.Observe(now.Sub(e.enqueued).Seconds())
		u.settle(e, nil)
		return
	}
	if u.ctx.Err() != nil {
		u.settle(e, fmt.Errorf("upload run %s: %w: %w", e.run.Name, ErrClosed, err))
		return
	}
	err = fmt.Errorf("uploader: upload run %s: %w", e.run.Name, err)
	u.failures.Add(1)
	u.metrics.failures.Inc()
	u.log.error("run upload failed", "run", e.run.Name, "path", e.path, "err", err)
	u.settle(e, err)
}

// uploadOnce makes one attempt; it returns the bytes sent (0 when the object
// was already there). Its errors do not name the run: process wraps the
// final one in "uploader: upload run NAME".
func (u *Uploader) uploadOnce(ctx context.Context, e *entry) (int64, error) {
	key := manifest.RunKey(e.run.Name)
	f, err := os.Open(e.path)
	if err != nil {
		return 0, fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	if st.Size() != e.run.Size {
		return 0, engines.Corruptf(e.path, st.Size(), "run file has %d bytes, sealed size is %d", st.Size(), e.run.Size)
	}
	body := newCheckReader(f, e.path, e.run.Size, e.run.CRC32C)
	if body.err != nil {
		return 0, body.err
	}
	want := fmt.Sprintf("%08x", e.run.CRC32C)
	err = u.store.Put(ctx, key, body, e.run.Size, objstore.PutOptions{
		IfAbsent: true,
		Metadata: map[string]string{"crc32c": want},
	})
	if body.err != nil {
		// The local file does not match its seal; whatever the store said,
		// it never got the last chunk, so no object was completed.
		return 0, body.err
	}
	switch {
	case err == nil && !body.verified:
		return 0, fmt.Errorf("the store accepted it after reading %d of %d bytes", body.n, e.run.Size)
	case err == nil:
		return e.run.Size, nil
	case !errors.Is(err, objstore.ErrPrecondition):
		return 0, err
	}

	info, err := u.store.Head(ctx, key)
	if errors.Is(err, objstore.ErrNotExist) {
		return 0, fmt.Errorf("%s existed at the create, not at the check: %w", key, objstore.ErrVanished)
	}
	if err != nil {
		return 0, fmt.Errorf("check existing object: %w", err)
	}
	got, ok := metadata(info.Metadata, "crc32c")
	if !ok && info.Size == e.run.Size {
		// No metadata (a file:// remote without user xattrs, or copied by a
		// tool that drops them): judge by the content itself.
		if got, err = objectCRC(ctx, u.store, key); err != nil {
			return 0, fmt.Errorf("check existing object: %w", err)
		}
	}
	if info.Size != e.run.Size || !strings.EqualFold(got, want) {
		return 0, fmt.Errorf("%w: remote %s has size %d crc32c %q, local run has size %d crc32c %s",
			ErrMismatch, key, info.Size, got, e.run.Size, want)
	}
	return 0, nil
}

// objectCRC reads key and returns the CRC-32C of its content, 8 hex digits.
func objectCRC(ctx context.Context, st objstore.Store, key string) (string, error) {
	rc, _, err := st.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := crc32.New(engines.CastagnoliTable)
	if _, err := io.Copy(h, rc); err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	return fmt.Sprintf("%08x", h.Sum32()), nil
}

// metadata looks a key up case-insensitively (backends differ in the case of
// user-metadata keys they return).
func metadata(md map[string]string, key string) (string, bool) {
	if v, ok := md[key]; ok {
		return v, true
	}
	for k, v := range md {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// checkReader streams exactly size bytes of a run file and computes their
// CRC-32C. It withholds the last chunk unless the CRC of the whole file equals
// want, and reports a file shorter than size as corruption, so that a store
// never receives a complete object with the wrong content.
type checkReader struct {
	r        io.Reader
	path     string
	size     int64
	want     uint32
	n        int64
	crc      uint32
	verified bool  // all size bytes read and the CRC matched
	err      error // corruption found
}

func newCheckReader(r io.Reader, path string, size int64, want uint32) *checkReader {
	c := &checkReader{r: r, path: path, size: size, want: want}
	if size == 0 {
		c.check()
	}
	return c
}

// check compares the CRC once all bytes were read.
func (c *checkReader) check() {
	if c.crc == c.want {
		c.verified = true
		return
	}
	c.err = engines.Corruptf(c.path, engines.UnknownOffset, "crc32c of the file is %08x, sealed run records %08x", c.crc, c.want)
}

func (c *checkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.n >= c.size {
		return 0, io.EOF
	}
	if rest := c.size - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.crc = crc32.Update(c.crc, engines.CastagnoliTable, p[:n])
	c.n += int64(n)
	if c.n == c.size {
		if c.check(); c.err != nil {
			return 0, c.err
		}
		return n, nil
	}
	if err == io.EOF {
		c.err = engines.Corruptf(c.path, c.n, "run file ends after %d bytes, sealed size is %d", c.n, c.size)
		return 0, c.err
	}
	return n, err
}
