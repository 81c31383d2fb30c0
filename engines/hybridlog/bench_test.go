package hybridlog

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/enginetest"
)

// BenchmarkEngine runs the shared engine benchmarks with the default
// parameters.
func BenchmarkEngine(b *testing.B) {
	enginetest.RunBenchmarks(b, factory(DefaultParams()))
}

// BenchmarkEngineWithCache is BenchmarkEngine with a 64 MiB block cache, as
// the tiered store runs the engine: reads of records already evicted from the
// window hit the cache instead of the file.
func BenchmarkEngineWithCache(b *testing.B) {
	c, err := cache.New(64 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	enginetest.RunBenchmarks(b, enginetest.Factory{
		Kind: Kind,
		Open: func(o engines.OpenOptions) (engines.Engine, error) {
			o.Cache = c
			return Open(o, DefaultParams())
		},
	})
}

type keyChooser interface{ Next() uint64 }

type uniformChooser struct {
	rng *rand.Rand
	n   uint64
}

func (u *uniformChooser) Next() uint64 { return u.rng.Uint64N(u.n) }

// BenchmarkInPlaceGoMap is the reference point for BenchmarkEngine/Set and
// Get: a map[string][]byte updated in place (copy into the existing value),
// same keys, values, key choice and number of keys (-enginetest.keys), no
// durability at all.
func BenchmarkInPlaceGoMap(b *testing.B) {
	n := uint64(1_000_000)
	if f := flag.Lookup("enginetest.keys"); f != nil {
		if v, err := strconv.ParseUint(f.Value.String(), 10, 64); err == nil && v > 0 {
			n = v
		}
	}
	val := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 4)[:enginetest.BenchValueSize]
	choosers := map[string]func(seed int64) keyChooser{
		"uniform": func(seed int64) keyChooser {
			return &uniformChooser{rng: rand.New(rand.NewPCG(uint64(seed), 3)), n: n}
		},
		"zipfian": func(seed int64) keyChooser { return enginetest.NewZipf(n, enginetest.ZipfTheta, seed) },
	}
	set := func(m map[string][]byte, key []byte) {
		if v, ok := m[string(key)]; ok {
			copy(v, val)
			return
		}
		m[string(key)] = bytes.Clone(val)
	}
	report := func(b *testing.B) {
		if s := b.Elapsed().Seconds(); s > 0 {
			b.ReportMetric(float64(b.N)/s, "ops/s")
		}
	}
	var key [enginetest.BenchKeySize]byte
	b.Run("Set", func(b *testing.B) {
		for _, dist := range []string{"uniform", "zipfian"} {
			b.Run(dist, func(b *testing.B) {
				m := map[string][]byte{}
				ch := choosers[dist](1)
				b.ReportAllocs()
				b.SetBytes(enginetest.BenchKeySize + enginetest.BenchValueSize)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					enginetest.BenchKey(&key, ch.Next())
					set(m, key[:])
				}
				b.StopTimer()
				report(b)
			})
		}
	})
	b.Run("Get", func(b *testing.B) {
		m := make(map[string][]byte, n)
		for i := uint64(0); i < n; i++ {
			enginetest.BenchKey(&key, i)
			set(m, key[:])
		}
		for _, dist := range []string{"uniform", "zipfian"} {
			b.Run(dist, func(b *testing.B) {
				ch := choosers[dist](2)
				b.ReportAllocs()
				b.SetBytes(enginetest.BenchKeySize + enginetest.BenchValueSize)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					enginetest.BenchKey(&key, ch.Next())
					v, ok := m[string(key[:])]
					if !ok {
						b.Fatal("preloaded key not found")
					}
					_ = bytes.Clone(v) // the engines hand out a copy too
				}
				b.StopTimer()
				report(b)
			})
		}
	})
}
