package lsm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

func TestMemtableOrderAndOverwrite(t *testing.T) {
	m := newMemtable()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{}
	for i := 0; i < 5000; i++ {
		k := fmt.Sprintf("k%d", rng.IntN(2000))
		v := fmt.Sprintf("v%d", i)
		if i%10 == 0 {
			m.add(engines.KindDelete, []byte(k), nil)
			want[k] = "\x00"
			continue
		}
		m.add(engines.KindSet, []byte(k), []byte(v))
		want[k] = v
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	i := 0
	for n := m.first(); n != nil; n = n.tower[0].Load() {
		if i >= len(keys) || string(n.key) != keys[i] {
			t.Fatalf("node %d is %q, want %q", i, n.key, keys[i])
		}
		e := n.val.Load()
		if w := want[keys[i]]; w == "\x00" && e.kind != engines.KindDelete || w != "\x00" && (e.kind != engines.KindSet || string(e.value) != w) {
			t.Fatalf("%q = %d %q, want %q", n.key, e.kind, e.value, w)
		}
		i++
	}
	if i != len(keys) || m.count.Load() != int64(len(keys)) {
		t.Fatalf("%d nodes, count %d, want %d", i, m.count.Load(), len(keys))
	}
	if _, ok := m.get([]byte("absent")); ok {
		t.Fatal("found an absent key")
	}
}

// TestMemtableConcurrentReaders: readers never see a torn or missing entry
// while one writer inserts and overwrites (run with -race).
func TestMemtableConcurrentReaders(t *testing.T) {
	m := newMemtable()
	const n = 3000
	var mu sync.Mutex // the writer's lock, as the DB holds it
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 9))
			for {
				select {
				case <-done:
					return
				default:
				}
				k := fmt.Sprintf("key-%05d", rng.IntN(n))
				if e, ok := m.get([]byte(k)); ok && !bytes.HasPrefix(e.value, []byte(k)) {
					t.Errorf("get %q = %q", k, e.value)
					return
				}
			}
		}(r)
	}
	for round := 0; round < 2; round++ {
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("key-%05d", (i*7919)%n)
			mu.Lock()
			m.add(engines.KindSet, []byte(k), []byte(fmt.Sprintf("%s/%d", k, round)))
			mu.Unlock()
		}
	}
	close(done)
	wg.Wait()
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key-%05d", i)
		if e, ok := m.get([]byte(k)); !ok || string(e.value) != k+"/1" {
			t.Fatalf("get %q = %v", k, ok)
		}
	}
}

func TestBloom(t *testing.T) {
	const n = 20000
	hashes := make([]uint64, n)
	for i := range hashes {
		hashes[i] = keyHash([]byte(fmt.Sprintf("member-%d", i)))
	}
	f, ok := decodeBloom(buildBloom(hashes))
	if !ok {
		t.Fatal("built filter does not decode")
	}
	for i, h := range hashes {
		if !f.mayContain(h) {
			t.Fatalf("false negative for member %d", i)
		}
	}
	fp := 0
	for i := 0; i < n; i++ {
		if f.mayContain(keyHash([]byte(fmt.Sprintf("stranger-%d", i)))) {
			fp++
		}
	}
	// 10 bits/key and 7 probes: about 0.8% expected.
	if rate := float64(fp) / n; rate > 0.02 {
		t.Fatalf("false positive rate %.4f", rate)
	}
	// The hash is part of the on-disk format; TestGoldenRun pins it through
	// the filter bytes of testdata/golden.sst.
}
