package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// fault scripts one Put call: before fails it without writing, after writes
// the object and then reports failure (a lost reply).
type fault struct{ before, after error }

// fakeStore is an in-memory store whose Puts can be scripted per key and
// held until released.
type fakeStore struct {
	objstore.Store
	mu      sync.Mutex
	script  map[string][]fault
	always  map[string]error // fail every Put of the key
	puts    map[string]int
	heads   int
	hold    chan struct{} // when non-nil, Puts wait for it to close (or ctx)
	started chan string   // when non-nil, receives the key of every Put
}

func newFakeStore() *fakeStore {
	return &fakeStore{Store: objstore.NewMem(), script: map[string][]fault{}, always: map[string]error{}, puts: map[string]int{}}
}

func (s *fakeStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) error {
	s.mu.Lock()
	s.puts[key]++
	var f fault
	if q := s.script[key]; len(q) > 0 {
		f, s.script[key] = q[0], q[1:]
	}
	if err := s.always[key]; err != nil {
		f.before = err
	}
	hold, started := s.hold, s.started
	s.mu.Unlock()
	if started != nil {
		started <- key
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return fmt.Errorf("fake put %s: %w", key, ctx.Err())
		}
	}
	if f.before != nil {
		return f.before
	}
	if err := s.Store.Put(ctx, key, r, size, opts); err != nil {
		return err
	}
	return f.after
}

func (s *fakeStore) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	s.mu.Lock()
	s.heads++
	s.mu.Unlock()
	return s.Store.Head(ctx, key)
}

func (s *fakeStore) putCount(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts[key]
}

var (
	unavailable = &objstore.StatusError{Op: "put", Key: "k", Code: 503, Err: errors.New("service unavailable")}
	forbidden   = &objstore.StatusError{Op: "put", Key: "k", Code: 403, Err: errors.New("access denied")}
	reset       = &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
)

// fastOptions retry quickly.
func fastOptions() Options {
	return Options{BaseBackoff: time.Microsecond, MaxBackoff: 10 * time.Microsecond}
}

// newRun writes a sealed run file into dir.
func newRun(t *testing.T, dir string, seq uint64, size int) (engines.RunInfo, string) {
	t.Helper()
	name := fmt.Sprintf("%016x-0badc0de.sst", seq)
	data := bytes.Repeat([]byte{byte(seq), byte(seq >> 8), 0x5a}, size/3+1)[:size]
	info, err := engines.WriteRun(engines.OSFS{}, dir, name, data)
	if err != nil {
		t.Fatal(err)
	}
	return info, filepath.Join(dir, name)
}

// newUploader starts an uploader that is closed (and checked for leaked
// goroutines) at the end of the test.
func newUploader(t *testing.T, s objstore.Store, o Options) *Uploader {
	t.Helper()
	u, err := New(s, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		u.Close()
		checkNoWorkers(t, u)
	})
	return u
}

// checkNoWorkers fails if a goroutine of u (a method with u as receiver) is
// still alive. Close has waited for them; the loop only gives an exiting
// goroutine the moment it needs to leave its last frame.
func checkNoWorkers(t *testing.T, u *Uploader) {
	t.Helper()
	frame := fmt.Sprintf("uploader.(*Uploader).worker(%p", u)
	var stacks string
	for range 200 {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, frame) {
			return
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("uploader goroutines still running after Close:\n%s", stacks)
}

func wait(t *testing.T, u *Uploader, names ...string) error {
	t.Helper()
	return u.Wait(context.Background(), names)
}

func TestUploadAndVerify(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	u := newUploader(t, s, fastOptions())
	var names []string
	var total int64
	runs := map[string]engines.RunInfo{}
	for i := range 5 {
		info, path := newRun(t, dir, uint64(i+1), 1000*i) // includes an empty run
		u.Enqueue(info, path)
		names = append(names, info.Name)
		runs[info.Name] = info
		total += info.Size
	}
	if err := wait(t, u, names...); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if !u.Present(name) {
			t.Errorf("%s not present after Wait", name)
		}
		rc, info, err := s.Get(context.Background(), manifest.RunKey(name))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		want, _ := os.ReadFile(filepath.Join(dir, name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s: remote content differs", name)
		}
		if md := info.Metadata["crc32c"]; md != fmt.Sprintf("%08x", runs[name].CRC32C) {
			t.Errorf("%s: crc32c metadata %q, want %08x", name, md, runs[name].CRC32C)
		}
	}
	st := u.Stats()
	if st.Uploads != 5 || st.Bytes != total || st.Retries != 0 || st.Failures != 0 || st.QueueDepth != 0 {
		t.Fatalf("Stats = %+v, want 5 uploads of %d bytes", st, total)
	}
}

func TestRetriesTransientErrors(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	info, path := newRun(t, dir, 1, 5000)
	key := manifest.RunKey(info.Name)
	s.script[key] = []fault{{before: unavailable}, {before: reset}, {before: fmt.Errorf("fake: %w", io.ErrUnexpectedEOF)}}
	u := newUploader(t, s, fastOptions())
	u.Enqueue(info, path)
	if err := wait(t, u, info.Name); err != nil {
		t.Fatal(err)
	}
	if n := s.putCount(key); n != 4 {
		t.Fatalf("%d puts, want 4", n)
	}
	if st := u.Stats(); st.Retries != 3 || st.Uploads != 1 || st.Bytes != 5000 || st.Failures != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	info, path := newRun(t, dir, 1, 100)
	key := manifest.RunKey(info.Name)
	s.script[key] = []fault{{before: forbidden}}
	u := newUploader(t, s, fastOptions())
	u.Enqueue(info, path)
	err := wait(t, u, info.Name)
	if !errors.Is(err, forbidden) || !strings.Contains(err.Error(), info.Name) {
		t.Fatalf("Wait = %v, want the 403 naming the run", err)
	}
	if n := s.putCount(key); n != 1 {
		t.Fatalf("%d puts, want 1", n)
	}
	if st := u.Stats(); st.Failures != 1 || st.Retries != 0 || st.Uploads != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	if u.Present(info.Name) {
		t.Fatal("failed run reported present")
	}
	// Enqueueing a failed run again starts over.
	u.Enqueue(info, path)
	if err := wait(t, u, info.Name); err != nil {
		t.Fatalf("second try: %v", err)
	}
	if !u.Present(info.Name) || s.putCount(key) != 2 {
		t.Fatalf("second try: present %v, %d puts", u.Present(info.Name), s.putCount(key))
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	info, path := newRun(t, dir, 1, 100)
	key := manifest.RunKey(info.Name)
	s.always[key] = unavailable
	o := fastOptions()
	o.MaxAttempts = 3
	u := newUploader(t, s, o)
	u.Enqueue(info, path)
	err := wait(t, u, info.Name)
	if !errors.Is(err, unavailable) || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("Wait = %v", err)
	}
	if n := s.putCount(key); n != 3 {
		t.Fatalf("%d puts, want 3", n)
	}
	if st := u.Stats(); st.Retries != 2 || st.Failures != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestAmbiguousSuccess(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	info, path := newRun(t, dir, 1, 4096)
	key := manifest.RunKey(info.Name)
	s.script[key] = []fault{{after: unavailable}} // written, but the reply is lost
	u := newUploader(t, s, fastOptions())
	u.Enqueue(info, path)
	if err := wait(t, u, info.Name); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if n := s.putCount(key); n != 2 || s.heads != 1 {
		t.Fatalf("%d puts and %d heads, want 2 and 1", n, s.heads)
	}
	if st := u.Stats(); st.Uploads != 1 || st.Retries != 1 || st.Failures != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestExistingObjectMismatch(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	info, path := newRun(t, dir, 1, 64)
	key := manifest.RunKey(info.Name)
	ctx := context.Background()
	other := bytes.Repeat([]byte("x"), 64)
	if err := s.Store.Put(ctx, key, bytes.NewReader(other), 64, objstore.PutOptions{Metadata: map[string]string{"crc32c": "00000000"}}); err != nil {
		t.Fatal(err)
	}
	u := newUploader(t, s, fastOptions())
	u.Enqueue(info, path)
	err := wait(t, u, info.Name)
	if !errors.Is(err, ErrMismatch) || objstore.Retryable(err) {
		t.Fatalf("Wait = %v, want a permanent ErrMismatch", err)
	}
	if n := s.putCount(key); n != 1 {
		t.Fatalf("%d puts, want 1", n)
	}
	rc, _, _ := s.Get(ctx, key)
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, other) {
		t.Fatal("existing object was overwritten")
	}
}

func TestLocalCorruption(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(info *engines.RunInfo, path string){
		"crc mismatch": func(info *engines.RunInfo, _ string) { info.CRC32C ^= 1 },
		"flipped byte": func(_ *engines.RunInfo, path string) {
			b, _ := os.ReadFile(path)
			b[len(b)/2] ^= 0x10
			os.WriteFile(path, b, 0o644)
		},
		"file shorter": func(info *engines.RunInfo, path string) { os.Truncate(path, info.Size-1) },
		"file longer":  func(info *engines.RunInfo, path string) { os.Truncate(path, info.Size+1) },
		"empty run with crc": func(info *engines.RunInfo, path string) {
			os.Truncate(path, 0)
			info.Size = 0
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := newFakeStore()
			info, path := newRun(t, dir, 1, 300000) // several reads
			damage(&info, path)
			u := newUploader(t, s, fastOptions())
			u.Enqueue(info, path)
			err := wait(t, u, info.Name)
			var ce *engines.CorruptionError
			if !errors.As(err, &ce) || ce.File != path || !strings.Contains(err.Error(), path) {
				t.Fatalf("Wait = %v, want corruption naming %s", err, path)
			}
			if objstore.Retryable(err) || u.Stats().Retries != 0 || u.Stats().Failures != 1 {
				t.Fatalf("corruption retried: %+v", u.Stats())
			}
			if _, err := s.Head(ctx, manifest.RunKey(info.Name)); !errors.Is(err, objstore.ErrNotExist) {
				t.Fatalf("a corrupt run reached the remote: %v", err)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	s := newFakeStore()
	u := newUploader(t, s, fastOptions())
	info := engines.RunInfo{Name: "0000000000000001-00000000.sst", Size: 1, CRC32C: 2}
	u.Enqueue(info, filepath.Join(t.TempDir(), info.Name))
	err := wait(t, u, info.Name)
	if !errors.Is(err, os.ErrNotExist) || u.Stats().Retries != 0 {
		t.Fatalf("Wait = %v (stats %+v), want a permanent not-exist error", err, u.Stats())
	}
	// A name that cannot be a key is refused without touching the store.
	bad := engines.RunInfo{Name: "../evil"}
	u.Enqueue(bad, "/etc/passwd")
	if err := wait(t, u, bad.Name); err == nil || !strings.Contains(err.Error(), "..") {
		t.Fatalf("bad name: %v", err)
	}
}

func TestDedup(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	s.hold = make(chan struct{})
	s.started = make(chan string, 16)
	info, path := newRun(t, dir, 1, 100)
	key := manifest.RunKey(info.Name)
	u := newUploader(t, s, fastOptions())

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); u.Enqueue(info, path) }()
	}
	wg.Wait()
	<-s.started // in flight
	u.Enqueue(info, path)
	close(s.hold)
	if err := wait(t, u, info.Name); err != nil {
		t.Fatal(err)
	}
	u.Enqueue(info, path) // present: nothing to do
	if err := wait(t, u, info.Name); err != nil {
		t.Fatal(err)
	}
	if n := s.putCount(key); n != 1 {
		t.Fatalf("%d puts, want 1", n)
	}

	// Runs marked present are never uploaded.
	info2, path2 := newRun(t, dir, 2, 100)
	u.MarkPresent(info2)
	if !u.Present(info2.Name) {
		t.Fatal("MarkPresent: not present")
	}
	u.Enqueue(info2, path2)
	if err := wait(t, u, info2.Name); err != nil {
		t.Fatal(err)
	}
	if n := s.putCount(manifest.RunKey(info2.Name)); n != 0 {
		t.Fatalf("present run uploaded %d times", n)
	}
	if st := u.Stats(); st.Uploads != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestWaitSemantics(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	s.hold = make(chan struct{})
	s.started = make(chan string, 16)
	o := fastOptions()
	o.Concurrency = 1
	u := newUploader(t, s, o)

	if err := wait(t, u); err != nil {
		t.Fatalf("Wait for nothing: %v", err)
	}
	if err := wait(t, u, "0000000000000009-00000000.sst"); !errors.Is(err, ErrUnknownRun) {
		t.Fatalf("Wait for an unknown run: %v", err)
	}
	present := engines.RunInfo{Name: "0000000000000008-00000000.sst", Size: 10}
	u.MarkPresent(present)
	if err := wait(t, u, present.Name); err != nil {
		t.Fatalf("Wait for a present run: %v", err)
	}

	first, p1 := newRun(t, dir, 1, 100)
	second, p2 := newRun(t, dir, 2, 100)
	u.Enqueue(first, p1)
	<-s.started // the only worker is busy with first
	u.Enqueue(second, p2)
	if st := u.Stats(); st.QueueDepth != 1 {
		t.Fatalf("QueueDepth = %d, want 1", st.QueueDepth)
	}

	// An unknown name is reported before any waiting.
	if err := wait(t, u, first.Name, "nope"); !errors.Is(err, ErrUnknownRun) {
		t.Fatalf("Wait with an unknown name: %v", err)
	}
	// Wait gives up with the context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := u.Wait(ctx, []string{first.Name}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a canceled context: %v", err)
	}
	// A queued run marked present releases its waiters and is never uploaded.
	u.MarkPresent(second)
	if err := wait(t, u, second.Name); err != nil {
		t.Fatalf("Wait for a queued run marked present: %v", err)
	}
	close(s.hold)
	if err := wait(t, u, first.Name, second.Name, present.Name); err != nil {
		t.Fatal(err)
	}
	if n := s.putCount(manifest.RunKey(second.Name)); n != 0 {
		t.Fatalf("run marked present was uploaded %d times", n)
	}
	if st := u.Stats(); st.Uploads != 1 {
		t.Fatalf("Stats = %+v", st)
	}

	// Wait returns the permanent error of a failed run among good ones.
	third, p3 := newRun(t, dir, 3, 100)
	s.mu.Lock()
	s.always[manifest.RunKey(third.Name)] = forbidden
	s.mu.Unlock()
	u.Enqueue(third, p3)
	if err := wait(t, u, first.Name, third.Name); !errors.Is(err, forbidden) {
		t.Fatalf("Wait with a failed run: %v", err)
	}
	// One worker, first in first out: it has dequeued second before third.
	if st := u.Stats(); st.QueueDepth != 0 || st.Uploads != 1 || st.Failures != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestCloseCancelsAndStops(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	s.hold = make(chan struct{}) // never released: Close must cancel
	s.started = make(chan string, 16)
	o := fastOptions()
	o.Concurrency = 1
	o.QueueSize = 1
	u, err := New(s, o)
	if err != nil {
		t.Fatal(err)
	}
	done, pd := newRun(t, dir, 9, 10)
	u.MarkPresent(done)
	a, pa := newRun(t, dir, 1, 100)
	b, pb := newRun(t, dir, 2, 100)
	c, pc := newRun(t, dir, 3, 100)
	u.Enqueue(a, pa)
	<-s.started
	u.Enqueue(b, pb) // fills the queue
	blocked := make(chan struct{})
	go func() { defer close(blocked); u.Enqueue(c, pc) }() // blocks: queue full

	u.Close()
	<-blocked
	checkNoWorkers(t, u)
	for _, r := range []engines.RunInfo{a, b, c} {
		if err := wait(t, u, r.Name); !errors.Is(err, ErrClosed) {
			t.Errorf("Wait(%s) after Close = %v, want ErrClosed", r.Name, err)
		}
	}
	if err := wait(t, u, done.Name); err != nil || !u.Present(done.Name) {
		t.Errorf("a present run is no longer present after Close: %v", err)
	}
	u.Enqueue(done, pd)
	d, pdd := newRun(t, dir, 4, 10)
	u.Enqueue(d, pdd)
	if err := wait(t, u, d.Name); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close: Wait = %v", err)
	}
	if st := u.Stats(); st.QueueDepth != 0 || st.Failures != 0 {
		t.Errorf("Stats after Close = %+v (cancellations are not failures)", st)
	}
	u.Close() // a second Close is a no-op
}

func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	s := newFakeStore()
	reg := prometheus.NewRegistry()
	o := fastOptions()
	o.Registerer = reg
	u := newUploader(t, s, o)
	// A second uploader on the same registry shares the collectors.
	u2 := newUploader(t, s, o)

	a, pa := newRun(t, dir, 1, 1000)
	b, pb := newRun(t, dir, 2, 500)
	c, pc := newRun(t, dir, 3, 10)
	s.script[manifest.RunKey(a.Name)] = []fault{{before: unavailable}}
	s.always[manifest.RunKey(c.Name)] = forbidden
	u.Enqueue(a, pa)
	u2.Enqueue(b, pb)
	u.Enqueue(c, pc)
	if err := wait(t, u, a.Name); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, u2, b.Name); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, u, c.Name); err == nil {
		t.Fatal("c should fail")
	}

	got := gather(t, reg)
	want := map[string]float64{
		"tierkv_upload_runs_total":               2,
		"tierkv_upload_bytes_total":              1500,
		"tierkv_upload_retries_total":            1,
		"tierkv_upload_failures_total":           1,
		"tierkv_upload_queue_depth":              0,
		"tierkv_upload_duration_seconds (count)": 2,
		"tierkv_upload_lag_seconds (count)":      2,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("metrics %v, want exactly %v", got, want)
	}
}

// gather returns every metric of reg by name; histograms by sample count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+" (count)"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestOptions(t *testing.T) {
	d := Options{}.EnsureDefaults()
	if d.Concurrency != 4 || d.QueueSize != 1024 || d.MaxAttempts != 8 ||
		d.BaseBackoff != 50*time.Millisecond || d.MaxBackoff != 5*time.Second || d.Logger == nil {
		t.Fatalf("defaults: %+v", d)
	}
	err := Options{Concurrency: -1, QueueSize: -2, MaxAttempts: -3, BaseBackoff: time.Second, MaxBackoff: time.Millisecond}.Validate()
	for _, want := range []string{"Concurrency -1", "QueueSize -2", "MaxAttempts -3", "MaxBackoff 1ms is below BaseBackoff 1s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want a mention of %q", err, want)
		}
	}
	if _, err := New(newFakeStore(), Options{Concurrency: -1}); err == nil {
		t.Fatal("New accepted invalid options")
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("New accepted a nil store")
	}
}

// TestExistingObjectWithoutMetadata: an object already under the run's key
// without crc32c metadata (a copied file:// remote) is judged by its
// content: the same bytes are the run, other bytes of the same size a
// mismatch.
func TestExistingObjectWithoutMetadata(t *testing.T) {
	ctx := context.Background()
	for _, same := range []bool{true, false} {
		dir := t.TempDir()
		s := newFakeStore()
		info, path := newRun(t, dir, 1, 64)
		key := manifest.RunKey(info.Name)
		content, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !same {
			content = bytes.Repeat([]byte("x"), len(content))
		}
		if err := s.Store.Put(ctx, key, bytes.NewReader(content), int64(len(content)), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		u := newUploader(t, s, fastOptions())
		u.Enqueue(info, path)
		err = wait(t, u, info.Name)
		switch {
		case same && err != nil:
			t.Fatalf("same content without metadata: Wait = %v, want success", err)
		case !same && !errors.Is(err, ErrMismatch):
			t.Fatalf("other content without metadata: Wait = %v, want ErrMismatch", err)
		}
	}
}
