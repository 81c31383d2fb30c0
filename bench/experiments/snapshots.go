package experiments

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tierkv/tierkv/bench/report"
	"github.com/tierkv/tierkv/bench/workload"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
)

// throttled simulates a network link: every byte put or got costs 1/bps
// seconds (the thesis's 1 µs per byte is 1e6 bytes/s).
type throttled struct {
	objstore.Store
	bps float64
}

func (t throttled) delay(n int64) {
	time.Sleep(time.Duration(float64(n) / t.bps * float64(time.Second)))
}

func (t throttled) Put(ctx context.Context, key string, r io.Reader, size int64, o objstore.PutOptions) error {
	t.delay(size)
	return t.Store.Put(ctx, key, r, size, o)
}

func (t throttled) Get(ctx context.Context, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	rc, info, err := t.Store.Get(ctx, key)
	if err == nil {
		t.delay(info.Size)
	}
	return rc, info, err
}

type remote struct {
	name  string
	store objstore.Store
}

// remotes returns the object stores of the snapshot experiment: a local
// directory, and MinIO when configured; each behind the simulated link.
func (e *Env) remotes(ctx context.Context, prefix string) ([]remote, error) {
	fs, err := objstore.Open(ctx, "file://"+e.Dir("remote-"+prefix))
	if err != nil {
		return nil, err
	}
	rs := []remote{{"file", fs}}
	if e.MinIO != "" {
		access, secret := os.Getenv("MINIO_ACCESS_KEY"), os.Getenv("MINIO_SECRET_KEY")
		mc, err := minio.New(e.MinIO, &minio.Options{Creds: credentials.NewStaticV4(access, secret, "")})
		if err != nil {
			return nil, fmt.Errorf("minio client for %s: %w", e.MinIO, err)
		}
		if ok, err := mc.BucketExists(ctx, e.Bucket); err != nil {
			return nil, fmt.Errorf("minio at %s: %w", e.MinIO, err)
		} else if !ok {
			if err := mc.MakeBucket(ctx, e.Bucket, minio.MakeBucketOptions{}); err != nil {
				return nil, fmt.Errorf("create bucket %s: %w", e.Bucket, err)
			}
		}
		ms, err := objstore.Open(ctx, fmt.Sprintf("minio://%s/%s/%s-%d?secure=false", e.MinIO, e.Bucket, prefix, time.Now().UnixNano()))
		if err != nil {
			return nil, err
		}
		rs = append(rs, remote{"minio", ms})
	}
	if e.LinkBytesPerSec > 0 {
		for i := range rs {
			rs[i].store = throttled{rs[i].store, e.LinkBytesPerSec}
		}
	}
	return rs, nil
}

const valueSize = 100

// runSet returns the runs of version v by name and size.
func runSet(ctx context.Context, st *tiered.Store, v uint64) (map[string]int64, error) {
	m, err := st.Manifest(ctx, v)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(m.Runs))
	for _, r := range m.Runs {
		out[r.Name] = r.Size
	}
	return out, nil
}

// writer writes a growing key space: new keys extend it, updates pick
// existing keys with a skew towards recent ones.
type writer struct {
	rng   *rand.Rand
	keys  uint64
	key   [16]byte
	value [valueSize]byte
	n     uint64
}

func (w *writer) next(newKey bool) ([]byte, []byte) {
	var i uint64
	if newKey || w.keys == 0 {
		i = w.keys
		w.keys++
	} else if w.rng.IntN(2) == 0 {
		i = w.keys - 1 - w.rng.Uint64N(min(w.keys, 10_000))
	} else {
		i = w.rng.Uint64N(w.keys)
	}
	binary.BigEndian.PutUint64(w.key[8:], i)
	w.n++
	binary.LittleEndian.PutUint64(w.value[:], w.n)
	return w.key[:], w.value[:]
}

// Snapshots reproduces thesis §4.3 at real scale: grow a state with a growing
// key space, then take a series of snapshots, each after a fixed volume of
// updates, and record time and bytes uploaded per snapshot for each engine
// (MemOnly dumps its whole state every time). It then measures restores: the
// latest version into an empty directory, and rollbacks of k versions with
// the newer state local.
func Snapshots(e *Env) error {
	ctx := context.Background()
	sc := e.Scale
	e.Summary.Heading("Snapshots (thesis §4.3, at real scale)")
	link := "no simulated link"
	if e.LinkBytesPerSec > 0 {
		link = fmt.Sprintf("a simulated link of %.0f bytes/s", e.LinkBytesPerSec)
	}
	e.Summary.Line("State grown to %d MiB (16 B keys, 100 B values, growing key space), then %d snapshots, each after %d KiB of updates (10%% new keys); %s. Every 10 snapshots, Forget keeps the versions the rollbacks need and GC deletes the rest (untimed).", sc.SnapshotState>>20, sc.Snapshots, sc.SnapshotDelta>>10, link)
	t := &report.Table{Header: []string{"engine", "remote", "snapshot", "bytes_written", "bytes_uploaded", "data_bytes_uploaded", "data_over_written", "total_bytes", "seconds", "cumulative_seconds"}}
	cum := &report.Plot{Title: "Cumulative snapshot time", XLabel: "snapshot", YLabel: "cumulative seconds", LogY: true}
	up := &report.Plot{Title: "Bytes uploaded per snapshot", XLabel: "snapshot", YLabel: "bytes", LogY: true}
	rt := &report.Table{Header: []string{"engine", "remote", "operation", "bytes_downloaded", "runs_downloaded", "runs_reused", "seconds"}}
	keep := 2
	for _, k := range sc.RollbackK {
		keep = max(keep, k+2)
	}
	totals := map[string]float64{}
	worst := map[string]float64{}
	median := map[string]float64{}
	amortized := map[string]float64{}
	for _, engine := range Engines {
		rs, err := e.remotes(ctx, engine)
		if err != nil {
			return err
		}
		for _, r := range rs {
			series := engine + "/" + r.name
			dir := e.Dir("snap-" + engine)
			st, err := tiered.Open(ctx, tiered.Options{Dir: dir, ObjectStore: r.store, Engine: engine, Params: compareParams(engine)})
			if err != nil {
				return fmt.Errorf("open %s: %w", series, err)
			}
			w := &writer{rng: rand.New(rand.NewPCG(e.Seed, 7))}
			for written := int64(0); written < sc.SnapshotState; written += 16 + valueSize {
				if err := st.Set(w.next(true)); err != nil {
					return err
				}
			}
			first, err := st.Snapshot(ctx)
			if err != nil {
				return fmt.Errorf("initial snapshot %s: %w", series, err)
			}
			prev, err := runSet(ctx, st, first.Version)
			if err != nil {
				return err
			}
			var total float64
			var versions []uint64
			var ratios []float64
			var sumData, sumWritten int64
			for i := 1; i <= sc.Snapshots; i++ {
				var written int64
				for written < sc.SnapshotDelta {
					if err := st.Set(w.next(w.rng.IntN(10) == 0)); err != nil {
						return err
					}
					written += 16 + valueSize
				}
				res, err := st.Snapshot(ctx)
				if err != nil {
					return fmt.Errorf("snapshot %d of %s: %w", i, series, err)
				}
				versions = append(versions, res.Version)
				total += res.Duration.Seconds()
				if i%10 == 0 {
					// Bound the remote's size (MemOnly leaves a full dump per
					// version) while keeping the versions the rollbacks need;
					// not part of the timed snapshots.
					if _, err := st.Forget(ctx, tiered.Policy{KeepLast: keep}, false); err != nil {
						return fmt.Errorf("forget in %s: %w", series, err)
					}
					if _, err := st.GC(ctx, 0, false); err != nil {
						return fmt.Errorf("gc in %s: %w", series, err)
					}
				}
				cur, err := runSet(ctx, st, res.Version)
				if err != nil {
					return err
				}
				// Data bytes: new runs other than index (hint) files; the
				// target excludes index files and the manifest.
				var data int64
				for name, size := range cur {
					if _, ok := prev[name]; !ok && filepath.Ext(name) != ".hint" {
						data += size
					}
				}
				prev = cur
				ratio := float64(data) / float64(written)
				ratios = append(ratios, ratio)
				sumData += data
				sumWritten += written
				t.Add(engine, r.name, i, written, res.BytesUploaded, data, ratio, res.TotalBytes, res.Duration.Seconds(), total)
				cum.Add(series, float64(i), total)
				up.Add(series, float64(i), float64(res.BytesUploaded))
				if engine != "memonly" && ratio > worst[series] {
					worst[series] = ratio
				}
			}
			totals[series] = total
			median[series] = workload.Median(ratios)
			amortized[series] = float64(sumData) / float64(sumWritten)
			e.Logf("snapshots %s: cumulative %.2fs", series, total)

			// Restore the latest version into an empty directory.
			full, err := tiered.RestoreTo(ctx, e.Dir("restore-"+engine), r.store, 0, nil)
			if err != nil {
				return fmt.Errorf("restore %s into an empty directory: %w", series, err)
			}
			rt.Add(engine, r.name, "latest into empty dir", full.BytesDownloaded, full.RunsDownloaded, full.RunsReused, full.Duration.Seconds())
			// Roll back k versions with the newer state local.
			for _, k := range sc.RollbackK {
				if k >= len(versions) {
					continue
				}
				res, err := st.Restore(ctx, versions[len(versions)-1-k])
				if err != nil {
					return fmt.Errorf("rollback %d versions of %s: %w", k, series, err)
				}
				rt.Add(engine, r.name, fmt.Sprintf("rollback %d", k), res.BytesDownloaded, res.RunsDownloaded, res.RunsReused, res.Duration.Seconds())
				if _, err := st.Restore(ctx, versions[len(versions)-1]); err != nil {
					return fmt.Errorf("roll forward %s: %w", series, err)
				}
			}
			if err := st.Close(); err != nil {
				return err
			}
			os.RemoveAll(dir)
		}
		for _, r := range rs {
			r.store.Close()
		}
	}
	if err := e.Save("snapshots", t, cum); err != nil {
		return err
	}
	if err := up.WritePNG(e.Out, "snapshots-bytes"); err != nil {
		return err
	}
	if err := e.Save("restore", rt, nil); err != nil {
		return err
	}
	e.Summary.Line("\n**Headlines:**\n")
	for _, engine := range Engines[:3] {
		for _, r := range []string{"file", "minio"} {
			full, inc := totals["memonly/"+r], totals[engine+"/"+r]
			if full == 0 || inc == 0 {
				continue
			}
			k := engine + "/" + r
			e.Summary.Line("- %s on %s: cumulative snapshot time over %d snapshots, full dump / incremental = %.1f× (target ≥ 50× at 1 GiB). Data bytes uploaded (index files and manifest excluded) / bytes written: median %.2f, worst %.2f, over the whole series %.2f (target ≤ 1.2 per snapshot; the worst snapshots are the ones that upload a merge output).",
				engine, r, sc.Snapshots, full/inc, median[k], worst[k], amortized[k])
		}
	}
	e.Summary.Image("snapshots", "Cumulative snapshot time")
	e.Summary.Image("snapshots-bytes", "Bytes uploaded per snapshot")
	e.Summary.Line("\n### Restore and rollback\n")
	e.Summary.Markdown(rt)
	return nil
}
