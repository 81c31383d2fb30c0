package lsm

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/enginetest"
)

// BenchmarkMemtableAdd measures the skiplist insert alone: 16-byte keys out
// of 1M, 100-byte values, a fresh memtable every 4 MiB (as the DB does).
func BenchmarkMemtableAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	val := make([]byte, enginetest.BenchValueSize)
	var key [enginetest.BenchKeySize]byte
	m := newMemtable()
	b.ReportAllocs()
	b.SetBytes(enginetest.BenchKeySize + enginetest.BenchValueSize)
	for i := 0; i < b.N; i++ {
		enginetest.BenchKey(&key, rng.Uint64N(1_000_000))
		m.add(engines.KindSet, key[:], val)
		if m.size.Load() >= 4<<20 {
			m = newMemtable()
		}
	}
}

// BenchmarkEngine runs the shared engine benchmarks with the default
// parameters.
func BenchmarkEngine(b *testing.B) {
	enginetest.RunBenchmarks(b, enginetest.Factory{
		Kind: Kind,
		Open: func(o engines.OpenOptions) (engines.Engine, error) { return Open(o, DefaultParams()) },
	})
}

// BenchmarkSetLatency measures the latency distribution of single Sets
// (uniform over 1M 16-byte keys, 100-byte values, default parameters) while
// flushes and merges run in the background. It reports p50, p99, p99.9 and
// the maximum in microseconds, and the flushes and merges that happened.
func BenchmarkSetLatency(b *testing.B) {
	d, err := Open(engines.OpenOptions{Dir: b.TempDir()}, DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	val := make([]byte, enginetest.BenchValueSize)
	var key [enginetest.BenchKeySize]byte
	lat := make([]int64, b.N)
	b.ReportAllocs()
	b.SetBytes(enginetest.BenchKeySize + enginetest.BenchValueSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		enginetest.BenchKey(&key, rng.Uint64N(1_000_000))
		t0 := time.Now()
		if err := d.Set(key[:], val); err != nil {
			b.Fatal(err)
		}
		lat[i] = int64(time.Since(t0))
	}
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p99.9-µs")
	b.ReportMetric(float64(lat[len(lat)-1])/1e3, "max-µs")
	b.ReportMetric(float64(d.flushes.Load()), "flushes")
	b.ReportMetric(float64(d.merges.Load()), "merges")
}
