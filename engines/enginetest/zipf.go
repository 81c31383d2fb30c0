package enginetest

import (
	"math"
	"math/rand/v2"
)

// Zipf draws item numbers in [0, n) with YCSB's scrambled zipfian
// distribution: a zipfian over n items (the popular items are the small
// numbers) whose output is scrambled with YCSB's 64-bit FNV hash, so that the
// hot items are spread over the key space instead of clustered at its start.
//
// YCSB's ScrambledZipfianGenerator with theta 0.99 draws from a zipfian over
// 10^10 items and folds it onto n; this one draws over exactly n items (zeta(n)
// is computed once, O(n)), which keeps the intended skew for any n and any
// theta. A Zipf is not safe for concurrent use; give each goroutine its own.
type Zipf struct {
	rng   *rand.Rand
	n     uint64
	theta float64
	alpha float64
	zetan float64
	eta   float64
	half  float64 // 1 + 0.5^theta
}

// NewZipf returns a scrambled zipfian generator over [0, n) with skew theta
// (YCSB uses 0.99; theta must be in (0, 1)), seeded with seed. n must be at
// least 1.
func NewZipf(n uint64, theta float64, seed int64) *Zipf {
	if n == 0 {
		n = 1
	}
	if !(theta > 0 && theta < 1) {
		theta = 0.99
	}
	zetan := zeta(n, theta)
	zeta2 := zeta(2, theta)
	z := &Zipf{
		rng:   rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		n:     n,
		theta: theta,
		alpha: 1 / (1 - theta),
		zetan: zetan,
		half:  1 + math.Pow(0.5, theta),
	}
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/zetan)
	return z
}

func zeta(n uint64, theta float64) float64 {
	var s float64
	for i := uint64(1); i <= n; i++ {
		s += 1 / math.Pow(float64(i), theta)
	}
	return s
}

// Next returns the next item number, in [0, n).
func (z *Zipf) Next() uint64 {
	return fnvHash64(z.nextRank()) % z.n
}

// nextRank draws a zipfian rank (0 is the most popular) as YCSB's
// ZipfianGenerator.nextValue does.
func (z *Zipf) nextRank() uint64 {
	u := z.rng.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.half {
		return 1
	}
	r := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	if r >= z.n {
		r = z.n - 1
	}
	return r
}

// fnvHash64 is YCSB's Utils.fnvhash64: FNV-1a over the 8 little-endian bytes
// of v, made non-negative as Java's Math.abs does.
func fnvHash64(v uint64) uint64 {
	const (
		offset = 0xcbf29ce484222325
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < 8; i++ {
		h ^= v & 0xff
		v >>= 8
		h *= prime
	}
	if s := int64(h); s < 0 {
		h = uint64(-s)
	}
	return h
}
