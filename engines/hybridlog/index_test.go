package hybridlog

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestIndexModel drives the index with random sets and removes against a map.
func TestIndexModel(t *testing.T) {
	x := newIndex(0)
	m := map[string]uint64{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200_000; i++ {
		k := fmt.Sprintf("k%d", rng.IntN(5000))
		switch rng.IntN(3) {
		case 0, 1:
			v := rng.Uint64() & addrMask
			x.set([]byte(k), v)
			m[k] = v
		case 2:
			if s := x.find(x.hash([]byte(k)), []byte(k)); s >= 0 {
				x.removeSlot(s)
			}
			delete(m, k)
		}
	}
	if x.live != len(m) {
		t.Fatalf("index holds %d keys, model %d", x.live, len(m))
	}
	for k, v := range m {
		if got, ok := x.get([]byte(k)); !ok || got != v {
			t.Fatalf("get %s = %d, %v; want %d", k, got, ok, v)
		}
	}
	for i := 0; i < 5000; i++ {
		k := fmt.Sprintf("k%d", i)
		if _, ok := x.get([]byte(k)); ok != (m[k] != 0 || hasKey(m, k)) {
			t.Fatalf("presence of %s differs", k)
		}
	}
}

func hasKey(m map[string]uint64, k string) bool { _, ok := m[k]; return ok }

// TestIndexUpdateNoAlloc checks that repointing an existing key allocates
// nothing.
func TestIndexUpdateNoAlloc(t *testing.T) {
	x := newIndex(0)
	key := []byte("0123456789abcdef")
	x.set(key, 1)
	if n := testing.AllocsPerRun(1000, func() { x.set(key, 2) }); n != 0 {
		t.Fatalf("set of an existing key: %v allocs", n)
	}
}
