// Package workload generates the key-value workloads of the tierkv benchmark
// suite and drives them against a store: key and value sizes, the number of
// distinct keys, the read/write mix and the key distribution (uniform,
// zipfian as in YCSB with theta 0.99 and scrambled keys, or a drifting hot
// set), all seedable.
//
// Two drivers measure a store: ClosedLoop issues operations back to back
// (maximum throughput), OpenLoop issues them at a target rate and measures
// each latency from the operation's intended start time, so that queueing
// behind a slow operation is counted instead of hidden (coordinated omission).
package workload

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/tierkv/tierkv/engines/enginetest"
)

// Distribution names a key distribution.
type Distribution string

// Key distributions.
const (
	Uniform  Distribution = "uniform"
	Zipfian  Distribution = "zipfian"  // YCSB scrambled zipfian, theta 0.99
	Drifting Distribution = "drifting" // a hot set of 1% of the keys taking 90% of accesses, moving over time
)

// Spec describes a workload.
type Spec struct {
	KeySize   int          // bytes per key (at least 8). Default: 16
	ValueSize int          // bytes per value. Default: 100
	Keys      uint64       // distinct keys. Default: 1,000,000
	ReadFrac  float64      // fraction of operations that are reads, 0..1
	Dist      Distribution // Default: Uniform
	Seed      uint64       // generator seed
	// DriftEvery is the number of operations after which the drifting hot
	// set moves by its own size. Default: Keys.
	DriftEvery uint64
}

func (s Spec) withDefaults() Spec {
	if s.KeySize == 0 {
		s.KeySize = 16
	}
	if s.ValueSize == 0 {
		s.ValueSize = 100
	}
	if s.Keys == 0 {
		s.Keys = 1_000_000
	}
	if s.Dist == "" {
		s.Dist = Uniform
	}
	if s.DriftEvery == 0 {
		s.DriftEvery = s.Keys
	}
	return s
}

// Validate checks the spec.
func (s Spec) Validate() error {
	s = s.withDefaults()
	switch {
	case s.KeySize < 8:
		return fmt.Errorf("workload: key size %d too small: want at least 8 bytes", s.KeySize)
	case s.ReadFrac < 0 || s.ReadFrac > 1:
		return fmt.Errorf("workload: read fraction %v outside 0..1", s.ReadFrac)
	case s.Dist != Uniform && s.Dist != Zipfian && s.Dist != Drifting:
		return fmt.Errorf("workload: unknown distribution %q: want uniform, zipfian or drifting", s.Dist)
	}
	return nil
}

// Op is one generated operation. Key and Value are reused by the next call to
// Next; stores copy them.
type Op struct {
	Read  bool
	Key   []byte
	Value []byte
}

// Generator produces a stream of operations. It is not safe for concurrent
// use; give each goroutine its own (with its own seed).
type Generator struct {
	spec  Spec
	rng   *rand.Rand
	zipf  *enginetest.Zipf
	n     uint64
	key   []byte
	value []byte
}

// New returns a generator for spec.
func New(spec Spec) (*Generator, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec = spec.withDefaults()
	g := &Generator{
		spec:  spec,
		rng:   rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x9e3779b97f4a7c15)),
		key:   make([]byte, spec.KeySize),
		value: make([]byte, spec.ValueSize),
	}
	if spec.Dist == Zipfian {
		g.zipf = enginetest.NewZipf(spec.Keys, 0.99, int64(spec.Seed))
	}
	for i := range g.value {
		g.value[i] = byte(g.rng.Uint32())
	}
	return g, nil
}

// Spec returns the generator's spec with defaults filled in.
func (g *Generator) Spec() Spec { return g.spec }

// NextIndex returns the index (0..Keys-1) of the next key.
func (g *Generator) NextIndex() uint64 {
	g.n++
	switch g.spec.Dist {
	case Zipfian:
		return g.zipf.Next() % g.spec.Keys
	case Drifting:
		hot := g.spec.Keys / 100
		if hot == 0 {
			hot = 1
		}
		if g.rng.Float64() < 0.9 {
			base := (g.n / g.spec.DriftEvery) * hot
			return (base + g.rng.Uint64N(hot)) % g.spec.Keys
		}
		return g.rng.Uint64N(g.spec.Keys)
	default:
		return g.rng.Uint64N(g.spec.Keys)
	}
}

// Key writes the key for index i into the generator's key buffer and returns
// it. Keys are the big-endian index padded to KeySize, so they are distinct.
func (g *Generator) Key(i uint64) []byte {
	clear(g.key)
	binary.BigEndian.PutUint64(g.key[len(g.key)-8:], i)
	return g.key
}

// Next returns the next operation.
func (g *Generator) Next() Op {
	i := g.NextIndex()
	read := g.spec.ReadFrac > 0 && g.rng.Float64() < g.spec.ReadFrac
	if !read && len(g.value) >= 8 {
		// Vary the value so that updates really change it.
		binary.LittleEndian.PutUint64(g.value, g.n)
	}
	return Op{Read: read, Key: g.Key(i), Value: g.value}
}
