package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/objstore"
)

// lossyStore performs Puts but reports failure for the next n of them, like a
// connection that drops after the server committed the write.
type lossyStore struct {
	objstore.Store
	mu       sync.Mutex
	lose     int // Puts to perform and then report as failed
	fail     int // Puts to refuse without performing
	puts     int
	failWith error
}

func (s *lossyStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) error {
	s.mu.Lock()
	s.puts++
	fail := s.fail > 0
	if fail {
		s.fail--
	}
	lose := !fail && s.lose > 0
	if lose {
		s.lose--
	}
	s.mu.Unlock()
	if fail {
		return s.failWith
	}
	err := s.Store.Put(ctx, key, r, size, opts)
	if err == nil && lose {
		return s.failWith
	}
	return err
}

func commitN(t *testing.T, s objstore.Store, versions ...uint64) {
	t.Helper()
	for _, v := range versions {
		m := &Manifest{Version: v, Engine: "memonly", WriterID: "test"}
		if err := Commit(context.Background(), s, m); err != nil {
			t.Fatalf("commit %d: %v", v, err)
		}
	}
}

func TestListVersionsSkipsUnknown(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMem()
	commitN(t, s, 1, 3, 12)
	for _, k := range []string{
		"manifests/00000000000000000012.tmp", "manifests/tmp", "manifests/00000000000000000000",
		"manifestsx/00000000000000000005", "runs/00000000000000000007",
	} {
		if err := s.Put(ctx, k, strings.NewReader("x"), 1, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := ListVersions(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(vs) != "[1 3 12]" {
		t.Fatalf("ListVersions = %v, want [1 3 12]", vs)
	}
}

func TestLoadMissingNamesNearest(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMem()

	_, err := Load(ctx, s, 7)
	if !errors.Is(err, ErrVersionNotFound) || !errors.Is(err, ErrNoVersions) {
		t.Fatalf("empty store: %v", err)
	}
	if err.Error() != "manifest: version 7 does not exist; the store has no versions" {
		t.Fatalf("empty store message: %q", err)
	}

	commitN(t, s, 1, 5, 8, 12)
	for v, want := range map[uint64]string{
		7:  "manifest: version 7 does not exist; nearest: 5, 8 (latest 12)",
		20: "manifest: version 20 does not exist; nearest: 12 (latest 12)",
		0:  "manifest: version 0 does not exist; nearest: 1 (latest 12)",
		3:  "manifest: version 3 does not exist; nearest: 1, 5 (latest 12)",
	} {
		_, err := Load(ctx, s, v)
		if !errors.Is(err, ErrVersionNotFound) || errors.Is(err, ErrNoVersions) {
			t.Errorf("Load(%d) = %v: want ErrVersionNotFound only", v, err)
			continue
		}
		if err.Error() != want {
			t.Errorf("Load(%d) message %q, want %q", v, err, want)
		}
		var vnf *VersionNotFoundError
		if !errors.As(err, &vnf) || vnf.Latest != 12 {
			t.Errorf("Load(%d): %#v", v, vnf)
		}
	}
	m, err := Load(ctx, s, 8)
	if err != nil || m.Version != 8 {
		t.Fatalf("Load(8) = %+v, %v", m, err)
	}
}

func TestVersionNotFound(t *testing.T) {
	vs := []uint64{1, 5, 8, 12}
	for _, c := range []struct {
		v, below, above, latest uint64
	}{
		{7, 5, 8, 12}, {20, 12, 0, 12}, {0, 0, 1, 12}, {1, 0, 5, 12}, {8, 5, 12, 12}, {12, 8, 0, 12},
	} {
		e := VersionNotFound(c.v, vs)
		if e.Version != c.v || e.Below != c.below || e.Above != c.above || e.Latest != c.latest {
			t.Errorf("VersionNotFound(%d) = %+v, want below %d above %d latest %d", c.v, e, c.below, c.above, c.latest)
		}
	}
	if e := VersionNotFound(3, nil); !errors.Is(e, ErrNoVersions) || e.Latest != 0 {
		t.Errorf("VersionNotFound over no versions = %+v", e)
	}
}

func TestNewID(t *testing.T) {
	a, b := NewID(8), NewID(8)
	if len(a) != 16 || a == b || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("NewID(8) = %q, %q: want two distinct 16-digit lowercase hex strings", a, b)
	}
}

func TestLoadRefusesMisplacedAndCorrupt(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMem()
	b, err := Encode(&Manifest{Version: 3, Engine: "lsm"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, Key(4), bytes.NewReader(b), int64(len(b)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Load(ctx, s, 4)
	if !errors.Is(err, engines.ErrCorrupt) || !strings.Contains(err.Error(), "records version 3") ||
		!strings.Contains(err.Error(), Key(4)) {
		t.Fatalf("misplaced manifest: %v", err)
	}

	bad := bytes.Replace(b, []byte(`"lsm"`), []byte(`"lsn"`), 1)
	if err := s.Put(ctx, Key(5), bytes.NewReader(bad), int64(len(bad)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Load(ctx, s, 5)
	var ce *engines.CorruptionError
	if !errors.As(err, &ce) || ce.File != Key(5) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("corrupt manifest: %v", err)
	}
	// Latest never falls back to an older version silently.
	if _, err := Latest(ctx, s); !errors.Is(err, engines.ErrCorrupt) {
		t.Fatalf("Latest over a corrupt latest: %v", err)
	}
}

func TestLatest(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMem()
	if _, err := Latest(ctx, s); !errors.Is(err, ErrNoVersions) {
		t.Fatalf("Latest on empty store: %v", err)
	}
	commitN(t, s, 1, 2, 9)
	m, err := Latest(ctx, s)
	if err != nil || m.Version != 9 {
		t.Fatalf("Latest = %+v, %v", m, err)
	}
}

func TestCommitFillsAndCreatesOnce(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMem()
	m := &Manifest{Version: 1, Engine: "lsm", Runs: []engines.RunInfo{{Name: "r1", Size: 10, CRC32C: 1}}}
	if err := Commit(ctx, s, m); err != nil {
		t.Fatal(err)
	}
	if m.CommitID == "" || m.Created.IsZero() || m.Checksum == "" || m.Stats.TotalRuns != 1 {
		t.Fatalf("Commit did not fill in the manifest: %+v", m)
	}
	info, err := s.Head(ctx, Key(1))
	if err != nil || info.Metadata["crc32c"] != m.Checksum {
		t.Fatalf("Head = %+v, %v", info, err)
	}
	got, err := Load(ctx, s, 1)
	if err != nil || got.CommitID != m.CommitID {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	// Committing the same manifest again is recognised as ours.
	if err := Commit(ctx, s, m); err != nil {
		t.Fatalf("repeat commit: %v", err)
	}
	// Another commit of version 1 is fenced and leaves the object alone.
	other := &Manifest{Version: 1, Engine: "lsm", WriterID: "intruder"}
	err = Commit(ctx, s, other)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("second writer: %v, want ErrFenced", err)
	}
	got, err = Load(ctx, s, 1)
	if err != nil || got.CommitID != m.CommitID {
		t.Fatalf("fenced commit changed the object: %+v, %v", got, err)
	}
	// Invalid manifests never reach the store.
	if err := Commit(ctx, s, &Manifest{Version: 2}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid manifest: %v", err)
	}
	if vs, _ := ListVersions(ctx, s); len(vs) != 1 {
		t.Fatalf("versions after invalid commit: %v", vs)
	}
}

func TestCommitAmbiguousRetry(t *testing.T) {
	ctx := context.Background()
	reset := errors.New("connection reset by peer")
	s := &lossyStore{Store: objstore.NewMem(), lose: 1, failWith: reset}
	m := &Manifest{Version: 1, Engine: "hybridlog"}
	if err := Commit(ctx, s, m); !errors.Is(err, reset) {
		t.Fatalf("first attempt: %v, want the lost reply", err)
	}
	// The object was created; the retry must recognise it.
	if err := Commit(ctx, s, m); err != nil {
		t.Fatalf("retry after ambiguous success: %v", err)
	}
	// A failed create (nothing written) followed by a retry also succeeds.
	s.fail = 1
	m2 := &Manifest{Version: 2, Parent: 1, Engine: "hybridlog"}
	if err := Commit(ctx, s, m2); !errors.Is(err, reset) {
		t.Fatalf("failed attempt: %v", err)
	}
	if err := Commit(ctx, s, m2); err != nil {
		t.Fatalf("retry after failure: %v", err)
	}
	if s.puts != 4 {
		t.Fatalf("%d puts, want 4", s.puts)
	}
	// A retry whose version someone else took in between is fenced.
	s.lose = 0
	s.fail = 1
	m3 := &Manifest{Version: 3, Parent: 2, Engine: "hybridlog"}
	if err := Commit(ctx, s, m3); !errors.Is(err, reset) {
		t.Fatal(err)
	}
	commitN(t, s.Store, 3)
	if err := Commit(ctx, s, m3); !errors.Is(err, ErrFenced) {
		t.Fatalf("retry after another writer won: %v", err)
	}
}

func TestCommitVanishedIsRetried(t *testing.T) {
	ctx := context.Background()
	// The create loses (the key exists), and the manifest is gone by the
	// read back: deleted in between. The commit is worth retrying.
	s := &lossyStore{Store: objstore.NewMem(), fail: 1, failWith: objstore.ErrPrecondition}
	m := &Manifest{Version: 1, Engine: "lsm"}
	err := Commit(ctx, s, m)
	if !errors.Is(err, objstore.ErrVanished) || !objstore.Retryable(err) || errors.Is(err, ErrFenced) {
		t.Fatalf("Commit = %v, want a retryable ErrVanished", err)
	}
	s.fail = 1
	if err := objstore.Retry(ctx, objstore.Backoff{Base: time.Microsecond, Max: time.Microsecond}, func(ctx context.Context) error {
		return Commit(ctx, s, m)
	}); err != nil {
		t.Fatalf("Retry(Commit) = %v", err)
	}
	if got, err := Load(ctx, s, 1); err != nil || got.CommitID != m.CommitID {
		t.Fatalf("Load after the retried commit = %+v, %v", got, err)
	}
}

func TestCommitBelowLatestIsFenced(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMem()
	commitN(t, s, 1, 5)
	// Version 3 is free (a gap, as Forget leaves), but another writer is at 5.
	err := Commit(ctx, s, &Manifest{Version: 3, Parent: 1, Engine: "lsm"})
	if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "version 5 already exists") {
		t.Fatalf("commit below latest: %v", err)
	}
	if _, err := s.Head(ctx, Key(3)); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("version 3 was written: %v", err)
	}
}

// overtakingStore lets another writer commit version above just before the
// first manifest Put, as if the committing writer had paused between its
// listing and its create.
type overtakingStore struct {
	objstore.Store
	t     *testing.T
	above uint64
	done  bool
}

func (s *overtakingStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) error {
	if !s.done {
		s.done = true
		commitN(s.t, s.Store, s.above)
	}
	return s.Store.Put(ctx, key, r, size, opts)
}

func TestCommitIntoForgetGapAfterPauseIsWithdrawn(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMem()
	commitN(t, mem, 1)
	// Version 2 is free when the writer lists (as after a Forget); another
	// writer commits 4 while it is paused before its create.
	s := &overtakingStore{Store: mem, t: t, above: 4}
	err := Commit(ctx, s, &Manifest{Version: 2, Parent: 1, Engine: "lsm"})
	if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "version 4 already exists above it") {
		t.Fatalf("commit into a gap after a pause: %v", err)
	}
	if _, err := mem.Head(ctx, Key(2)); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("the stale version 2 was left in place: %v", err)
	}
	if vs, err := ListVersions(ctx, mem); err != nil || len(vs) != 2 || vs[0] != 1 || vs[1] != 4 {
		t.Fatalf("versions after the withdrawal: %v, %v", vs, err)
	}
}

func TestCommitRace(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMem()
	const writers = 6
	for v := uint64(1); v <= 10; v++ {
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			errs   = make([]error, writers)
			commit = make([]string, writers)
		)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := &Manifest{Version: v, Parent: v - 1, Engine: "lsm", WriterID: fmt.Sprint("w", w)}
				<-start
				errs[w] = Commit(ctx, s, m)
				commit[w] = m.CommitID
			}()
		}
		close(start)
		wg.Wait()
		winners := 0
		var winner string
		for w, err := range errs {
			switch {
			case err == nil:
				winners++
				winner = commit[w]
			case !errors.Is(err, ErrFenced):
				t.Fatalf("version %d writer %d: %v, want nil or ErrFenced", v, w, err)
			}
		}
		if winners != 1 {
			t.Fatalf("version %d: %d winners, want exactly 1 (%v)", v, winners, errs)
		}
		m, err := Load(ctx, s, v)
		if err != nil || m.CommitID != winner {
			t.Fatalf("version %d holds %+v (%v), want the winner's commit %s", v, m, err, winner)
		}
	}
}
