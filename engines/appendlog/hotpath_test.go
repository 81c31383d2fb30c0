//go:build unix

package appendlog

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/enginetest"
)

// cpuTime returns the CPU time (user + system) the process used so far, so
// that benchmarks on a shared machine can report CPU per operation besides
// wall-clock throughput. Background sealing and merging are included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// BenchmarkHotPath measures Set (default parameters: seals and merges
// included) and Get with a warm block cache (200,000 sealed keys, all cached)
// with the benchmark shape of enginetest, and reports CPU per operation.
func BenchmarkHotPath(b *testing.B) {
	val := make([]byte, enginetest.BenchValueSize)
	var key [enginetest.BenchKeySize]byte
	b.Run("Set", func(b *testing.B) {
		db, err := Open(engines.OpenOptions{Dir: b.TempDir()}, DefaultParams())
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		start := cpuTime()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			enginetest.BenchKey(&key, rng.Uint64N(1_000_000))
			if err := db.Set(key[:], val); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportCPU(b, start)
	})
	b.Run("GetCached", func(b *testing.B) {
		const n = 200_000
		c, err := cache.New(256 << 20)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		db, err := Open(engines.OpenOptions{Dir: b.TempDir(), Cache: c}, DefaultParams())
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		for i := uint64(0); i < n; i++ {
			enginetest.BenchKey(&key, i)
			if err := db.Set(key[:], val); err != nil {
				b.Fatal(err)
			}
		}
		cp, err := db.Seal()
		if err != nil {
			b.Fatal(err)
		}
		db.Release(cp)
		waitMergesB(db)
		for round := 0; round < 3; round++ { // ristretto admits on a later touch
			for i := uint64(0); i < n; i++ {
				enginetest.BenchKey(&key, i)
				if _, _, err := db.Get(key[:]); err != nil {
					b.Fatal(err)
				}
			}
			c.Wait()
		}
		rng := rand.New(rand.NewPCG(3, 4))
		h0 := c.Stats()
		b.ReportAllocs()
		start := cpuTime()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			enginetest.BenchKey(&key, rng.Uint64N(n))
			if _, ok, err := db.Get(key[:]); err != nil || !ok {
				b.Fatal(err, ok)
			}
		}
		b.StopTimer()
		reportCPU(b, start)
		h1 := c.Stats()
		if d := (h1.Hits - h0.Hits) + (h1.Misses - h0.Misses); d > 0 {
			b.ReportMetric(float64(h1.Hits-h0.Hits)/float64(d), "hit-ratio")
		}
	})
}

func waitMergesB(db *DB) {
	for {
		db.mu.RLock()
		busy := db.merging || db.mergeErr == nil && db.failed == nil && db.mergeDueLocked()
		db.mu.RUnlock()
		if !busy {
			return
		}
		kick(db.kickMerge)
		time.Sleep(time.Millisecond)
	}
}
