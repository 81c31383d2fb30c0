package cache

import (
	"bytes"
	"sync"
	"testing"
)

func TestNewRefusesBadBudget(t *testing.T) {
	for _, b := range []int64{0, -1, -1 << 40} {
		c, err := New(b)
		if err == nil {
			c.Close()
			t.Fatalf("New(%d) succeeded", b)
		}
	}
}

func TestHitsAndMisses(t *testing.T) {
	c, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := NewFileID()
	if _, ok := c.Get(f, 0); ok {
		t.Fatal("hit in an empty cache")
	}
	block := bytes.Repeat([]byte{7}, 4096)
	c.Set(f, 0, block)
	c.Wait()
	got, ok := c.Get(f, 0)
	if !ok || !bytes.Equal(got, block) {
		t.Fatalf("Get after Set = %d bytes, %v", len(got), ok)
	}
	// Another offset and another file are misses.
	if _, ok := c.Get(f, 4096); ok {
		t.Fatal("hit at an offset never set")
	}
	if _, ok := c.Get(NewFileID(), 0); ok {
		t.Fatal("hit for a file never set")
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 3 {
		t.Fatalf("Stats = %+v, want 1 hit and 3 misses", st)
	}
	if st.Budget != 1<<20 {
		t.Fatalf("Budget = %d", st.Budget)
	}
	if st.Bytes < 4096 {
		t.Fatalf("Bytes = %d after caching a 4096-byte block", st.Bytes)
	}
}

func TestUncacheableOffsetsAreMisses(t *testing.T) {
	c, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := NewFileID()
	for _, off := range []int64{-1, MaxOffset + 1} {
		c.Set(f, off, []byte("x"))
		c.Wait()
		if _, ok := c.Get(f, off); ok {
			t.Fatalf("offset %d was cached", off)
		}
	}
	if st := c.Stats(); st.Misses != 2 || st.Hits != 0 {
		t.Fatalf("Stats = %+v, want 2 misses", st)
	}
	// The largest cacheable offset works.
	c.Set(f, MaxOffset, []byte("y"))
	c.Wait()
	if b, ok := c.Get(f, MaxOffset); !ok || string(b) != "y" {
		t.Fatalf("Get(MaxOffset) = %q, %v", b, ok)
	}
}

func TestBudgetRespected(t *testing.T) {
	const budget = 256 << 10
	c, err := New(budget)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := NewFileID()
	block := make([]byte, 4096)
	// Offer 16x the budget.
	for i := int64(0); i < 16*budget/4096; i++ {
		c.Set(f, i*4096, block)
		if i%64 == 0 {
			c.Wait()
		}
	}
	c.Wait()
	st := c.Stats()
	if st.Bytes > budget {
		t.Fatalf("cache holds %d bytes, budget %d", st.Bytes, budget)
	}
	if st.Bytes == 0 {
		t.Fatal("cache holds nothing after 16x its budget was offered")
	}
	held := 0
	for i := int64(0); i < 16*budget/4096; i++ {
		if _, ok := c.Get(f, i*4096); ok {
			held++
		}
	}
	if maxBlocks := budget / (4096 + entryOverhead); held > maxBlocks {
		t.Fatalf("%d blocks cached, at most %d fit in the budget", held, maxBlocks)
	}
}

func TestNilCacheIsSafe(t *testing.T) {
	var c *Cache
	c.Set(1, 0, []byte("x"))
	c.Wait()
	if b, ok := c.Get(1, 0); ok || b != nil {
		t.Fatalf("nil cache Get = %q, %v", b, ok)
	}
	if st := c.Stats(); st != (Stats{}) {
		t.Fatalf("nil cache Stats = %+v", st)
	}
	c.Close()
}

func TestFileIDsUnique(t *testing.T) {
	seen := map[uint64]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				id := NewFileID()
				mu.Lock()
				if seen[id] {
					t.Errorf("file id %d handed out twice", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestConcurrentUse(t *testing.T) {
	c, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := NewFileID()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				off := int64((g*500 + i) * 100)
				want := []byte{byte(g), byte(i)}
				c.Set(f, off, want)
				if b, ok := c.Get(f, off); ok && !bytes.Equal(b, want) {
					t.Errorf("Get(%d) = %v, want %v", off, b, want)
				}
			}
		}(g)
	}
	wg.Wait()
	c.Wait()
	st := c.Stats()
	if st.Hits+st.Misses != 2000 {
		t.Fatalf("hits %d + misses %d, want 2000 lookups", st.Hits, st.Misses)
	}
}
