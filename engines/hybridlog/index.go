package hybridlog

import (
	"bytes"
	"hash/maphash"
)

// A pointer is what the index stores for a key: where its newest record is.
//
//	bit 63     1 = disk pointer (a merged run), 0 = logical address
//	bit 62     1 = the record is a tombstone
//	disk:      bits 40..61 run slot, bits 0..39 offset in the run
//	logical:   bits 0..61 logical address in the hybrid log
//
// Logical addresses at or above the head live in the ring buffer; below it
// they are in the log run whose [start, end) holds them.
const (
	ptrDisk     = uint64(1) << 63
	ptrTomb     = uint64(1) << 62
	addrMask    = ptrTomb - 1
	diskOffBits = 40
	diskOffMask = uint64(1)<<diskOffBits - 1
	maxSlot     = uint64(1)<<(62-diskOffBits) - 1
)

func diskPtr(slot uint32, off uint64) uint64 {
	return ptrDisk | uint64(slot)<<diskOffBits | off
}

// ptrLoc strips the tombstone bit: the location of the record.
func ptrLoc(p uint64) uint64 { return p &^ ptrTomb }

// index is an open-addressing hash table (linear probing) from key to
// pointer. Keys live in one byte arena, so the table holds no Go pointers per
// entry and updating the pointer of an existing key never allocates.
type index struct {
	seed    maphash.Seed
	slots   []islot
	mask    uint64
	arena   []byte
	live    int // slots holding a key
	used    int // live + deleted markers
	garbage int // arena bytes of removed keys
}

// islot is one table slot. ref is arena offset<<16 | key length; 0 marks an
// empty slot and deletedRef a removed one (a key length of 0 is impossible).
type islot struct {
	hash uint64
	ref  uint64
	ptr  uint64
}

const deletedRef = uint64(1) << 16

func newIndex(capacity int) *index {
	n := 64
	for n*3/4 < capacity {
		n *= 2
	}
	return &index{seed: maphash.MakeSeed(), slots: make([]islot, n), mask: uint64(n - 1)}
}

func (x *index) hash(key []byte) uint64 { return maphash.Bytes(x.seed, key) }

func (x *index) keyOf(ref uint64) []byte {
	off := ref >> 16
	return x.arena[off : off+ref&0xffff]
}

// find returns the slot of key, or -1.
func (x *index) find(h uint64, key []byte) int {
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		s := &x.slots[i]
		if s.ref == 0 {
			return -1
		}
		if s.hash == h && s.ref != deletedRef && bytes.Equal(x.keyOf(s.ref), key) {
			return int(i)
		}
	}
}

// get returns the pointer of key.
func (x *index) get(key []byte) (uint64, bool) {
	i := x.find(x.hash(key), key)
	if i < 0 {
		return 0, false
	}
	return x.slots[i].ptr, true
}

// insert adds key, which must be absent.
func (x *index) insert(h uint64, key []byte, ptr uint64) {
	if (x.used+1)*4 > len(x.slots)*3 {
		x.rehash()
	}
	i := h & x.mask
	for ; x.slots[i].ref != 0 && x.slots[i].ref != deletedRef; i = (i + 1) & x.mask {
	}
	if x.slots[i].ref == 0 {
		x.used++
	}
	off := uint64(len(x.arena))
	x.arena = append(x.arena, key...)
	x.slots[i] = islot{hash: h, ref: off<<16 | uint64(len(key)), ptr: ptr}
	x.live++
}

// set stores ptr for key, inserting it if absent.
func (x *index) set(key []byte, ptr uint64) {
	h := x.hash(key)
	if i := x.find(h, key); i >= 0 {
		x.slots[i].ptr = ptr
		return
	}
	x.insert(h, key, ptr)
}

// removeSlot deletes the key in slot i.
func (x *index) removeSlot(i int) {
	s := &x.slots[i]
	x.garbage += int(s.ref & 0xffff)
	// A slot followed by an empty one can become empty again: no probe
	// sequence runs through it.
	if x.slots[(uint64(i)+1)&x.mask].ref == 0 {
		*s = islot{}
		x.used--
	} else {
		*s = islot{ref: deletedRef}
	}
	x.live--
	if x.garbage > 1<<20 && x.garbage > len(x.arena)/2 {
		x.rehash()
	}
}

// rehash rebuilds the table (doubling it when more than half full) and
// compacts the arena.
func (x *index) rehash() {
	n := len(x.slots)
	if (x.live+1)*2 > n {
		n *= 2
	}
	old, oldArena := x.slots, x.arena
	x.slots = make([]islot, n)
	x.mask = uint64(n - 1)
	x.arena = make([]byte, 0, len(oldArena)-x.garbage+len(oldArena)/4)
	x.used, x.garbage = 0, 0
	for _, s := range old {
		if s.ref == 0 || s.ref == deletedRef {
			continue
		}
		o := s.ref >> 16
		key := oldArena[o : o+s.ref&0xffff]
		i := s.hash & x.mask
		for x.slots[i].ref != 0 {
			i = (i + 1) & x.mask
		}
		off := uint64(len(x.arena))
		x.arena = append(x.arena, key...)
		x.slots[i] = islot{hash: s.hash, ref: off<<16 | uint64(len(key)), ptr: s.ptr}
		x.used++
	}
}

// memory returns the bytes held by the table and the arena.
func (x *index) memory() int64 {
	return int64(len(x.slots))*24 + int64(cap(x.arena))
}
