package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tierkv/tierkv/tiered"
)

// Environment of the writer process the kill driver starts (TestHelperWriter).
const (
	envWriter  = "TIERKV_RELIABILITY_WRITER" // "1" in the writer process
	envDir     = "TIERKV_RW_DIR"             // local directory of the store
	envRemote  = "TIERKV_RW_REMOTE"          // remote URL
	envJournal = "TIERKV_RW_JOURNAL"         // journal path
	envEngine  = "TIERKV_RW_ENGINE"          // engine kind
	envMode    = "TIERKV_RW_MODE"            // remote | local
	envSeed    = "TIERKV_RW_SEED"            // workload seed
)

// exitWrong is the exit status of a writer that saw a wrong value or an
// unexpected error; the driver fails the test with the writer's stderr.
const exitWrong = 3

// TestHelperWriter is not a test: it is the writer process of the kill
// tests, started by the driver with the test binary and envWriter=1. It
// opens a tiered store and runs random writes, deletes, snapshots, restores,
// forgets and GCs until it is killed, announcing every operation in the
// journal (see journal_test.go). Any wrong value or unexpected error makes
// it exit with status 3 and a message on stderr.
func TestHelperWriter(t *testing.T) {
	if os.Getenv(envWriter) != "1" {
		t.Skip("helper process of the kill tests; started by them")
	}
	if err := runWriter(); err != nil {
		fmt.Fprintf(os.Stderr, "writer: %v\n", err)
		os.Exit(exitWrong)
	}
	os.Exit(0)
}

func runWriter() error {
	ctx := context.Background()
	seed, _ := strconv.ParseUint(os.Getenv(envSeed), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 99))
	jpath := os.Getenv(envJournal)
	m, err := replay(jpath)
	if err != nil {
		return err
	}
	var notify *os.File
	if f := os.NewFile(3, "notify"); f != nil {
		notify = f
	}
	j, err := openJournal(jpath, notify)
	if err != nil {
		return err
	}
	defer j.close()

	kind := os.Getenv(envEngine)
	mode := os.Getenv(envMode)
	o := tiered.Options{
		Dir:               os.Getenv(envDir),
		Remote:            os.Getenv(envRemote),
		Engine:            kind,
		Params:            tinyParams(kind),
		ResumeLocal:       mode == "local",
		UploadConcurrency: 2,
		CacheBytes:        1 << 20,
	}
	if err := j.log(false, "open %s", mode); err != nil {
		return err
	}
	s, err := tiered.Open(ctx, o)
	if err != nil {
		return fmt.Errorf("open (%s): %w", mode, err)
	}
	cur, err := readState(s)
	if err != nil {
		return fmt.Errorf("after open (%s): %w", mode, err)
	}
	switch {
	case mode == "remote" && m.latest != 0:
		want, ok := m.versions[s.Version()]
		if !ok || s.Version() != m.latest || !cur.equal(want) {
			return fmt.Errorf("open restored version %d (journal latest %d) with state %v; want %v:%s",
				s.Version(), m.latest, cur, want, diffStates(cur, want))
		}
	case mode == "local" && !cur.equal(m.lb):
		// The driver's check closed the store cleanly and logged its state.
		return fmt.Errorf("local open gives %v, the driver's last check saw %v:%s", cur, m.lb, diffStates(cur, m.lb))
	}
	if err := j.log(true, "base %d %s", s.Version(), cur.encode()); err != nil {
		return err
	}
	versions := m.versions // committed versions with known states

	for {
		r := rng.IntN(1000)
		switch {
		case r < 15: // snapshot
			if err := j.log(false, "snap"); err != nil {
				return err
			}
			res, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"digest": cur.digest()}))
			if err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			versions[res.Version] = cur.clone()
			if err := j.log(true, "commit %d %s", res.Version, cur.digest()); err != nil {
				return err
			}
		case r < 20: // restore a random existing version
			ms, err := s.Versions(ctx)
			if err != nil {
				return fmt.Errorf("versions: %w", err)
			}
			var known []uint64
			for _, mf := range ms {
				if _, ok := versions[mf.Version]; ok {
					known = append(known, mf.Version)
				}
			}
			if len(known) == 0 {
				continue
			}
			v := known[rng.IntN(len(known))]
			if err := j.log(false, "restore %d", v); err != nil {
				return err
			}
			if _, err := s.Restore(ctx, v); err != nil {
				return fmt.Errorf("restore %d: %w", v, err)
			}
			got, err := readState(s)
			if err != nil {
				return fmt.Errorf("after restore %d: %w", v, err)
			}
			if !got.equal(versions[v]) {
				return fmt.Errorf("restore %d gives %v, want %v:%s", v, got, versions[v], diffStates(got, versions[v]))
			}
			if md := s.Metadata()["digest"]; md != got.digest() {
				return fmt.Errorf("restore %d: metadata digest %q, state digest %s", v, md, got.digest())
			}
			cur = got
			if err := j.log(true, "restored %d %s", v, cur.digest()); err != nil {
				return err
			}
		case r < 24: // retention and garbage collection
			if err := j.log(false, "forget"); err != nil {
				return err
			}
			if _, err := s.Forget(ctx, tiered.Policy{KeepLast: 3 + rng.IntN(3)}, false); err != nil && !errors.Is(err, tiered.ErrNoVersions) {
				return fmt.Errorf("forget: %w", err)
			}
			gc, err := s.GC(ctx, 0, false)
			if err != nil {
				return fmt.Errorf("gc: %w", err)
			}
			if err := j.log(false, "gcdone %d", len(gc.Deleted)); err != nil {
				return err
			}
		case r < 60: // check a random key
			k := rng.IntN(numKeys)
			v, ok, err := s.Get([]byte(keyName(k)))
			if err != nil {
				return fmt.Errorf("get %s: %w", keyName(k), err)
			}
			want, wok := cur[k]
			if ok != wok || (ok && !slices.Equal(v, makeValue(k, want.Seq, want.Pad))) {
				return fmt.Errorf("get %s = %.40q, %v; want %v, %v", keyName(k), v, ok, want, wok)
			}
		case r < 180: // delete
			k := rng.IntN(numKeys)
			if err := j.log(false, "del %d", k); err != nil {
				return err
			}
			if err := s.Delete([]byte(keyName(k))); err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			delete(cur, k)
		default: // set
			k, pad := rng.IntN(numKeys), rng.IntN(120)
			seq := j.next()
			if err := j.log(false, "set %d %d", k, pad); err != nil {
				return err
			}
			if err := s.Set([]byte(keyName(k)), makeValue(k, seq, pad)); err != nil {
				return fmt.Errorf("set: %w", err)
			}
			cur[k] = entry{Seq: seq, Pad: pad}
		}
		if rng.IntN(200) == 0 {
			// Let background flushes, merges and uploads run.
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	}
}
