package enginetest

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

// Benchmark shape (the thesis's YCSB-like workload).
const (
	// BenchKeySize is the key size of the benchmarks: 16 bytes (the hex form
	// of a 64-bit key number).
	BenchKeySize = 16
	// BenchValueSize is the value size of the benchmarks.
	BenchValueSize = 100
	// ZipfTheta is YCSB's zipfian constant.
	ZipfTheta = 0.99
)

// BenchKey writes the 16-byte benchmark key of item i into dst.
func BenchKey(dst *[BenchKeySize]byte, i uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	hex.Encode(dst[:], b[:])
}

// chooser picks key numbers in [0, n).
type chooser interface{ Next() uint64 }

type uniform struct {
	rng *rand.Rand
	n   uint64
}

func (u *uniform) Next() uint64 { return u.rng.Uint64N(u.n) }

func newChooser(dist string, n uint64, seed int64) chooser {
	if dist == "zipfian" {
		return NewZipf(n, ZipfTheta, seed)
	}
	return &uniform{rng: rand.New(rand.NewPCG(uint64(seed), 3)), n: n}
}

// benchKeys returns the number of distinct keys (-enginetest.keys).
func benchKeys() uint64 {
	if *keysFlag < 1 {
		return 1
	}
	return uint64(*keysFlag)
}

// RunBenchmarks runs Set/uniform, Set/zipfian, Get/uniform and Get/zipfian
// with 16-byte keys and 100-byte values over -enginetest.keys distinct keys
// (default 1,000,000). Each reports ops/s and allocations; the Get benchmarks
// preload every key (then seal) once, outside the timer, and report the
// engine's MemoryUsage after the preload as bytes/key. Engines are opened on
// b.TempDir() with the factory.
func RunBenchmarks(b *testing.B, f Factory) {
	n := benchKeys()
	b.Run("Set", func(b *testing.B) {
		for _, dist := range []string{"uniform", "zipfian"} {
			b.Run(dist, func(b *testing.B) {
				e := openBench(b, f)
				defer closeBench(b, e)
				ch := newChooser(dist, n, 1)
				val := benchValue()
				var key [BenchKeySize]byte
				b.ReportAllocs()
				b.SetBytes(BenchKeySize + BenchValueSize)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					BenchKey(&key, ch.Next())
					if err := e.Set(key[:], val); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				reportOps(b)
			})
		}
	})
	b.Run("Get", func(b *testing.B) {
		e := openBench(b, f)
		defer closeBench(b, e)
		val := benchValue()
		var key [BenchKeySize]byte
		for i := uint64(0); i < n; i++ {
			BenchKey(&key, i)
			if err := e.Set(key[:], val); err != nil {
				b.Fatal(err)
			}
		}
		cp, err := e.Seal()
		if err != nil {
			b.Fatal(err)
		}
		e.Release(cp)
		bytesPerKey := float64(e.MemoryUsage()) / float64(n)
		for _, dist := range []string{"uniform", "zipfian"} {
			b.Run(dist, func(b *testing.B) {
				ch := newChooser(dist, n, 2)
				b.ReportAllocs()
				b.SetBytes(BenchKeySize + BenchValueSize)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					BenchKey(&key, ch.Next())
					_, found, err := e.Get(key[:])
					if err != nil {
						b.Fatal(err)
					}
					if !found {
						b.Fatalf("preloaded key %s not found", key[:])
					}
				}
				b.StopTimer()
				reportOps(b)
				b.ReportMetric(bytesPerKey, "bytes/key")
			})
		}
	})
}

func openBench(b *testing.B, f Factory) engines.Engine {
	b.Helper()
	e, err := f.Open(engines.OpenOptions{Dir: b.TempDir()})
	if err != nil {
		b.Fatalf("open %s: %v", f.Kind, err)
	}
	return e
}

func closeBench(b *testing.B, e engines.Engine) {
	b.Helper()
	if err := e.Close(); err != nil {
		b.Fatalf("close: %v", err)
	}
}

func benchValue() []byte {
	v := make([]byte, BenchValueSize)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

func reportOps(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}
