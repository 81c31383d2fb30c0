package lsm

// Bloom filter shape: 10 bits per key and 7 probes give about 1% false
// positives.
const (
	bloomBitsPerKey = 10
	bloomProbes     = 7
	maxBloomProbes  = 30
)

// keyHash is the filter's hash: FNV-1a 64 of the key, finished with
// MurmurHash3's fmix64 so that every output bit depends on every input bit.
// It is part of the on-disk format.
func keyHash(key []byte) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for len(key) >= 8 {
		// Same result as the byte loop, unrolled.
		h = (h ^ uint64(key[0])) * prime64
		h = (h ^ uint64(key[1])) * prime64
		h = (h ^ uint64(key[2])) * prime64
		h = (h ^ uint64(key[3])) * prime64
		h = (h ^ uint64(key[4])) * prime64
		h = (h ^ uint64(key[5])) * prime64
		h = (h ^ uint64(key[6])) * prime64
		h = (h ^ uint64(key[7])) * prime64
		key = key[8:]
	}
	for _, c := range key {
		h = (h ^ uint64(c)) * prime64
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// bloom is a decoded filter: probe count and bitmap, aliasing the encoded
// bytes.
type bloom struct {
	probes int
	bits   []byte
	m      uint64
}

// buildBloom encodes a filter for the given key hashes:
// probes u8 | bitmap.
func buildBloom(hashes []uint64) []byte {
	m := uint64(len(hashes)) * bloomBitsPerKey
	m = (m + 63) / 64 * 64
	if m < 64 {
		m = 64
	}
	out := make([]byte, 1+m/8)
	out[0] = bloomProbes
	bits := out[1:]
	for _, h := range hashes {
		delta := h>>33 | h<<31
		for i := 0; i < bloomProbes; i++ {
			b := h % m
			bits[b/8] |= 1 << (b % 8)
			h += delta
		}
	}
	return out
}

// decodeBloom checks the shape of an encoded filter. ok is false if it is
// malformed.
func decodeBloom(b []byte) (bloom, bool) {
	if len(b) < 1+8 || (len(b)-1)%8 != 0 || b[0] < 1 || b[0] > maxBloomProbes {
		return bloom{}, false
	}
	return bloom{probes: int(b[0]), bits: b[1:], m: uint64(len(b)-1) * 8}, true
}

// mayContain reports whether the key with hash h may be in the set.
func (f *bloom) mayContain(h uint64) bool {
	if f.m == 0 {
		return true
	}
	delta := h>>33 | h<<31
	for i := 0; i < f.probes; i++ {
		b := h % f.m
		if f.bits[b/8]&(1<<(b%8)) == 0 {
			return false
		}
		h += delta
	}
	return true
}
