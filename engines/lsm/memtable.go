package lsm

import (
	"bytes"
	"sync/atomic"

	"github.com/tierkv/tierkv/engines"
)

// Skiplist shape: each level holds about 1/4 of the nodes of the level below;
// 12 levels serve 4^12 (16M) entries per memtable in O(log n).
const (
	maxHeight    = 12
	heightBranch = 4
)

// Slab and arena sizes: nodes, towers and key/value bytes are carved out of
// large chunks so that a Set does not allocate on average.
const (
	nodeSlab   = 512
	towerSlab  = 2048
	entrySlab  = 256
	arenaChunk = 64 << 10
)

// entry is one version of a key's value. A node's entry is replaced
// atomically when the key is written again.
type entry struct {
	value []byte
	kind  byte
}

type node struct {
	key   []byte
	val   atomic.Pointer[entry]
	tower []atomic.Pointer[node]
}

// memtable is a skiplist with one writer at a time (callers serialize add
// under the DB's write mutex) and any number of concurrent lock-free readers:
// nodes are fully built before they are linked with atomic stores, and a
// key's value is replaced by an atomic pointer swap.
type memtable struct {
	head   node
	height atomic.Int32

	// Written only by the single writer.
	rnd    uint64
	nodes  []node
	towers []atomic.Pointer[node]
	ents   []entry
	arena  []byte

	size  atomic.Int64 // framed bytes of every record added (memtable_bytes_limit)
	mem   atomic.Int64 // bytes allocated: arena, slabs
	count atomic.Int64 // distinct keys

	seq uint64 // freeze order, set under the DB's write mutex
}

func newMemtable() *memtable {
	m := &memtable{rnd: 0x9e3779b97f4a7c15}
	m.head.tower = make([]atomic.Pointer[node], maxHeight)
	m.height.Store(1)
	return m
}

func (m *memtable) randomHeight() int {
	// xorshift64*
	m.rnd ^= m.rnd >> 12
	m.rnd ^= m.rnd << 25
	m.rnd ^= m.rnd >> 27
	r := m.rnd * 2685821657736338717
	h := 1
	for h < maxHeight && r&(heightBranch-1) == 0 {
		h++
		r >>= 2
	}
	return h
}

// alloc copies b into the arena and returns the copy.
func (m *memtable) alloc(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if len(b) > arenaChunk/4 {
		c := make([]byte, len(b))
		copy(c, b)
		m.mem.Add(int64(len(b)))
		return c
	}
	if len(m.arena)+len(b) > cap(m.arena) {
		m.arena = make([]byte, 0, arenaChunk)
		m.mem.Add(arenaChunk)
	}
	n := len(m.arena)
	m.arena = append(m.arena, b...)
	return m.arena[n : n+len(b) : n+len(b)]
}

func (m *memtable) newEntry(kind byte, value []byte) *entry {
	if len(m.ents) == 0 {
		m.ents = make([]entry, entrySlab)
		m.mem.Add(entrySlab * 32)
	}
	e := &m.ents[0]
	m.ents = m.ents[1:]
	e.kind = kind
	e.value = m.alloc(value)
	return e
}

// findGE returns the first node with key >= key, filling prev (if non-nil)
// with the last node before it at each level.
func (m *memtable) findGE(key []byte, prev *[maxHeight]*node) *node {
	x := &m.head
	var next *node
	for level := int(m.height.Load()) - 1; level >= 0; level-- {
		for {
			next = x.tower[level].Load()
			if next == nil || bytes.Compare(next.key, key) >= 0 {
				break
			}
			x = next
		}
		if prev != nil {
			prev[level] = x
		}
	}
	return next
}

// add records kind/value under key. Only one goroutine may call add at a
// time.
func (m *memtable) add(kind byte, key, value []byte) {
	m.size.Add(int64(engines.RecordSize(len(key), len(value))))
	var prev [maxHeight]*node
	n := m.findGE(key, &prev)
	if n != nil && bytes.Equal(n.key, key) {
		n.val.Store(m.newEntry(kind, value))
		return
	}
	h := m.randomHeight()
	if cur := int(m.height.Load()); h > cur {
		for l := cur; l < h; l++ {
			prev[l] = &m.head
		}
		m.height.Store(int32(h))
	}
	if len(m.nodes) == 0 {
		m.nodes = make([]node, nodeSlab)
		m.mem.Add(nodeSlab * 56)
	}
	nd := &m.nodes[0]
	m.nodes = m.nodes[1:]
	if len(m.towers) < h {
		m.towers = make([]atomic.Pointer[node], towerSlab)
		m.mem.Add(towerSlab * 8)
	}
	nd.tower = m.towers[:h:h]
	m.towers = m.towers[h:]
	nd.key = m.alloc(key)
	nd.val.Store(m.newEntry(kind, value))
	for l := 0; l < h; l++ {
		nd.tower[l].Store(prev[l].tower[l].Load())
	}
	for l := 0; l < h; l++ {
		prev[l].tower[l].Store(nd)
	}
	m.count.Add(1)
}

// get returns the newest entry for key.
func (m *memtable) get(key []byte) (*entry, bool) {
	n := m.findGE(key, nil)
	if n != nil && bytes.Equal(n.key, key) {
		return n.val.Load(), true
	}
	return nil, false
}

// first returns the smallest node; next(n) is n.tower[0].Load().
func (m *memtable) first() *node { return m.head.tower[0].Load() }

func (m *memtable) empty() bool { return m.first() == nil }

// memoryUsage is the bytes the memtable holds.
func (m *memtable) memoryUsage() int64 { return m.mem.Load() }
