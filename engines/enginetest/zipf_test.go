package enginetest

import (
	"testing"
)

func TestZipfDeterministicAndInRange(t *testing.T) {
	a, b := NewZipf(1000, 0.99, 42), NewZipf(1000, 0.99, 42)
	for i := 0; i < 10000; i++ {
		x, y := a.Next(), b.Next()
		if x != y {
			t.Fatalf("draw %d: same seed gave %d and %d", i, x, y)
		}
		if x >= 1000 {
			t.Fatalf("draw %d: %d out of [0, 1000)", i, x)
		}
	}
	c := NewZipf(1000, 0.99, 43)
	same := 0
	for i := 0; i < 1000; i++ {
		if a.Next() == c.Next() {
			same++
		}
	}
	if same > 500 {
		t.Fatalf("different seeds agreed on %d of 1000 draws", same)
	}
}

func TestZipfIsSkewedAndScrambled(t *testing.T) {
	const n, draws = 10000, 200000
	z := NewZipf(n, 0.99, 1)
	counts := make([]int, n)
	for i := 0; i < draws; i++ {
		counts[z.Next()]++
	}
	// The most popular item of a zipfian(0.99) over 10^4 items takes about
	// 1/zeta(10^4) ~ 10% of the draws; a uniform choice gives 0.01%.
	top, topItem, distinct := 0, 0, 0
	for i, c := range counts {
		if c > top {
			top, topItem = c, i
		}
		if c > 0 {
			distinct++
		}
	}
	if top < draws/20 {
		t.Fatalf("most popular item drawn %d of %d times: not skewed", top, draws)
	}
	// Scrambled: the hottest item is the hash of rank 0, not item 0.
	if want := int(fnvHash64(0) % n); topItem != want {
		t.Fatalf("most popular item %d, want fnvhash64(0) %% n = %d", topItem, want)
	}
	if distinct < n/4 {
		t.Fatalf("only %d distinct items of %d drawn", distinct, n)
	}
}

func TestZipfSingleItem(t *testing.T) {
	z := NewZipf(1, 0.99, 1)
	for i := 0; i < 100; i++ {
		if v := z.Next(); v != 0 {
			t.Fatalf("Next() = %d over one item", v)
		}
	}
}

func TestBenchKey(t *testing.T) {
	var k [BenchKeySize]byte
	BenchKey(&k, 0x0123456789abcdef)
	if string(k[:]) != "0123456789abcdef" {
		t.Fatalf("BenchKey = %q", k[:])
	}
}
