package lsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/tierkv/tierkv/engines"
)

// Run file constants; the layout is in the package doc.
const (
	runExt         = "sst"
	runMagic       = "TKVLSMRN"
	runVersion     = 1
	footerSize     = 52
	footerCRCStart = 48 // the footer's crc32c field
	// minRecordSize is the smallest framed record: a header and a 1-byte key.
	minRecordSize = engines.RecordHeaderSize + 1
	// minFenceEntry is the smallest fence entry: length, 1-byte key, offset.
	minFenceEntry = 2 + 1 + 8
	// builderChunk is the write size of a run builder.
	builderChunk = 64 << 10
)

// State (CURRENT / Checkpoint.State) constants.
const (
	stateMagic     = "TKVLSMST"
	stateVersion   = 1
	maxStateLevels = 255
	currentName    = "CURRENT"
)

// fenceIndex is the in-memory fence index of a run: the key and offset of
// every density-th record, and the run's largest key.
type fenceIndex struct {
	keys    []byte   // fence keys, concatenated
	keyEnd  []uint32 // keyEnd[i] is the end of fence key i in keys
	offs    []int64  // offs[i] is the offset of fence i's record
	lastKey []byte
}

func (fx *fenceIndex) n() int { return len(fx.offs) }

func (fx *fenceIndex) key(i int) []byte {
	start := uint32(0)
	if i > 0 {
		start = fx.keyEnd[i-1]
	}
	return fx.keys[start:fx.keyEnd[i]]
}

func (fx *fenceIndex) add(key []byte, off int64) {
	fx.keys = append(fx.keys, key...)
	fx.keyEnd = append(fx.keyEnd, uint32(len(fx.keys)))
	fx.offs = append(fx.offs, off)
}

// search returns the index of the last fence whose key is <= key, or -1.
func (fx *fenceIndex) search(key []byte) int {
	lo, hi := 0, fx.n()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bytes.Compare(fx.key(mid), key) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

func (fx *fenceIndex) memoryUsage() int64 {
	return int64(cap(fx.keys) + 4*cap(fx.keyEnd) + 8*cap(fx.offs) + cap(fx.lastKey))
}

// runMeta is what a run's footer, fence index and filter say about it.
type runMeta struct {
	dataLen     int64
	recordCount uint64
	density     int
	fences      fenceIndex
	filter      bloom
	filterBytes []byte
}

func (m *runMeta) memoryUsage() int64 {
	return m.fences.memoryUsage() + int64(cap(m.filterBytes))
}

// blockBounds returns the byte range and record count of block i.
func (m *runMeta) blockBounds(i int) (off, end int64, count int) {
	off = m.fences.offs[i]
	end = m.dataLen
	if i+1 < m.fences.n() {
		end = m.fences.offs[i+1]
	}
	count = m.density
	if i == m.fences.n()-1 {
		count = int(m.recordCount - uint64(i)*uint64(m.density))
	}
	return off, end, count
}

// runBuilder writes a run: records in key order through add, then the fence
// index, filter and footer through finish.
type runBuilder struct {
	w       io.Writer
	density int
	off     int64
	count   uint64
	fences  fenceIndex
	hashes  []uint64
	buf     []byte
}

func newRunBuilder(w io.Writer, density int) *runBuilder {
	return &runBuilder{w: w, density: density}
}

// add appends one record. Keys must arrive in strictly increasing order.
// Records are buffered and written in chunks of about builderChunk bytes.
func (b *runBuilder) add(kind byte, key, value []byte) error {
	if b.count%uint64(b.density) == 0 {
		b.fences.add(key, b.off)
	}
	n := len(b.buf)
	b.buf = engines.AppendRecord(b.buf, kind, key, value)
	b.off += int64(len(b.buf) - n)
	b.count++
	b.hashes = append(b.hashes, keyHash(key))
	b.fences.lastKey = append(b.fences.lastKey[:0], key...)
	if len(b.buf) >= builderChunk {
		return b.flushBuf()
	}
	return nil
}

func (b *runBuilder) flushBuf() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// finish writes the fence index, the filter and the footer and returns the
// run's metadata (what a reader would decode from it).
func (b *runBuilder) finish() (*runMeta, error) {
	if b.count == 0 {
		return nil, errors.New("lsm: build run: no records")
	}
	if err := b.flushBuf(); err != nil {
		return nil, err
	}
	fx := &b.fences
	fenceBytes := make([]byte, 0, 4+fx.n()*(2+8)+len(fx.keys)+2+len(fx.lastKey))
	fenceBytes = binary.LittleEndian.AppendUint32(fenceBytes, uint32(fx.n()))
	for i := 0; i < fx.n(); i++ {
		k := fx.key(i)
		fenceBytes = binary.LittleEndian.AppendUint16(fenceBytes, uint16(len(k)))
		fenceBytes = append(fenceBytes, k...)
		fenceBytes = binary.LittleEndian.AppendUint64(fenceBytes, uint64(fx.offs[i]))
	}
	fenceBytes = binary.LittleEndian.AppendUint16(fenceBytes, uint16(len(fx.lastKey)))
	fenceBytes = append(fenceBytes, fx.lastKey...)
	filter := buildBloom(b.hashes)
	b.hashes = nil

	footer := make([]byte, footerSize)
	binary.LittleEndian.PutUint64(footer[0:], uint64(b.off))
	binary.LittleEndian.PutUint64(footer[8:], uint64(len(fenceBytes)))
	binary.LittleEndian.PutUint64(footer[16:], uint64(len(filter)))
	binary.LittleEndian.PutUint64(footer[24:], b.count)
	binary.LittleEndian.PutUint32(footer[32:], uint32(b.density))
	binary.LittleEndian.PutUint32(footer[36:], runVersion)
	copy(footer[40:48], runMagic)
	crc := crc32.Update(0, engines.CastagnoliTable, fenceBytes)
	crc = crc32.Update(crc, engines.CastagnoliTable, filter)
	crc = crc32.Update(crc, engines.CastagnoliTable, footer[:footerCRCStart])
	binary.LittleEndian.PutUint32(footer[footerCRCStart:], crc)
	for _, p := range [][]byte{fenceBytes, filter, footer} {
		if _, err := b.w.Write(p); err != nil {
			return nil, err
		}
	}
	f, _ := decodeBloom(filter)
	fx.keys = bytes.Clone(fx.keys)
	fx.keyEnd = append([]uint32(nil), fx.keyEnd...)
	fx.offs = append([]int64(nil), fx.offs...)
	fx.lastKey = bytes.Clone(fx.lastKey)
	return &runMeta{
		dataLen:     b.off,
		recordCount: b.count,
		density:     b.density,
		fences:      *fx,
		filter:      f,
		filterBytes: filter,
	}, nil
}

// decodeRunMeta reads and checks the footer, fence index and filter of the
// run called name (size bytes, read through r). It never reads the data
// section.
func decodeRunMeta(name string, r io.ReaderAt, size int64) (*runMeta, error) {
	if size < footerSize {
		return nil, engines.Corruptf(name, engines.UnknownOffset, "file of %d bytes is shorter than the %d-byte footer", size, footerSize)
	}
	footOff := size - footerSize
	footer := make([]byte, footerSize)
	if _, err := r.ReadAt(footer, footOff); err != nil {
		return nil, fmt.Errorf("lsm: read footer of %s: %w", name, err)
	}
	if string(footer[40:48]) != runMagic {
		return nil, engines.Corruptf(name, footOff+40, "bad run magic %q", footer[40:48])
	}
	if v := binary.LittleEndian.Uint32(footer[36:]); v != runVersion {
		return nil, engines.Corruptf(name, footOff+36, "unsupported run format version %d", v)
	}
	dataLen := binary.LittleEndian.Uint64(footer[0:])
	fenceLen := binary.LittleEndian.Uint64(footer[8:])
	filterLen := binary.LittleEndian.Uint64(footer[16:])
	count := binary.LittleEndian.Uint64(footer[24:])
	density := binary.LittleEndian.Uint32(footer[32:])
	u := uint64(footOff)
	if dataLen > u || fenceLen > u || filterLen > u || dataLen+fenceLen+filterLen != u {
		return nil, engines.Corruptf(name, footOff, "section lengths %d+%d+%d do not add up to %d bytes before the footer", dataLen, fenceLen, filterLen, u)
	}
	meta := make([]byte, fenceLen+filterLen)
	if _, err := r.ReadAt(meta, int64(dataLen)); err != nil {
		return nil, fmt.Errorf("lsm: read fence index of %s: %w", name, err)
	}
	crc := crc32.Update(0, engines.CastagnoliTable, meta)
	crc = crc32.Update(crc, engines.CastagnoliTable, footer[:footerCRCStart])
	if want := binary.LittleEndian.Uint32(footer[footerCRCStart:]); crc != want {
		return nil, engines.Corruptf(name, int64(dataLen), "fence index, filter and footer checksum mismatch (computed %08x, stored %08x)", crc, want)
	}
	// From here on the bytes are as written; what remains are checks of a
	// writer's bugs or of a crafted file.
	if density < minDensityFactor || density > maxDensityFactor {
		return nil, engines.Corruptf(name, footOff+32, "density factor %d out of range", density)
	}
	if count == 0 || count > dataLen/minRecordSize {
		return nil, engines.Corruptf(name, footOff+24, "record count %d impossible for %d data bytes", count, dataLen)
	}
	m := &runMeta{dataLen: int64(dataLen), recordCount: count, density: int(density)}
	if err := decodeFences(name, int64(dataLen), meta[:fenceLen], m); err != nil {
		return nil, err
	}
	m.filterBytes = meta[fenceLen:]
	f, ok := decodeBloom(m.filterBytes)
	if !ok {
		return nil, engines.Corruptf(name, int64(dataLen+fenceLen), "malformed Bloom filter of %d bytes", filterLen)
	}
	m.filter = f
	return m, nil
}

func decodeFences(name string, base int64, b []byte, m *runMeta) error {
	bad := func(pos int, format string, args ...any) error {
		return engines.Corruptf(name, base+int64(pos), "fence index: "+format, args...)
	}
	if len(b) < 4 {
		return bad(0, "too short")
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	want := (m.recordCount + uint64(m.density) - 1) / uint64(m.density)
	if n != want || n > uint64(len(b))/minFenceEntry {
		return bad(0, "%d fences for %d records at density %d", n, m.recordCount, m.density)
	}
	fx := &m.fences
	fx.keyEnd = make([]uint32, 0, n)
	fx.offs = make([]int64, 0, n)
	fx.keys = make([]byte, 0, len(b))
	pos := 4
	var prevOff int64 = -1
	for i := uint64(0); i < n; i++ {
		if len(b)-pos < 2 {
			return bad(pos, "entry %d cut short", i)
		}
		kl := int(binary.LittleEndian.Uint16(b[pos:]))
		if kl == 0 || len(b)-pos-2 < kl+8 {
			return bad(pos, "entry %d has a bad key length %d", i, kl)
		}
		key := b[pos+2 : pos+2+kl]
		off := binary.LittleEndian.Uint64(b[pos+2+kl:])
		if i == 0 && off != 0 || i > 0 && (int64(off) <= prevOff || off >= uint64(m.dataLen)) || off > uint64(m.dataLen) {
			return bad(pos, "entry %d has offset %d out of order or range", i, off)
		}
		if i > 0 && bytes.Compare(fx.key(int(i)-1), key) >= 0 {
			return bad(pos, "entry %d key out of order", i)
		}
		fx.add(key, int64(off))
		prevOff = int64(off)
		pos += 2 + kl + 8
	}
	if len(b)-pos < 2 {
		return bad(pos, "last key cut short")
	}
	kl := int(binary.LittleEndian.Uint16(b[pos:]))
	if kl == 0 || len(b)-pos-2 != kl {
		return bad(pos, "last key length %d does not fill the index", kl)
	}
	fx.lastKey = bytes.Clone(b[pos+2:])
	if bytes.Compare(fx.lastKey, fx.key(int(n)-1)) < 0 {
		return bad(pos, "last key is below the last fence key")
	}
	fx.keys = bytes.Clone(fx.keys)
	return nil
}

// checkBlock verifies block i of a run (buf holds its bytes, read from disk):
// every record's checksum, key order, the record count, and agreement with
// the fence keys. off is the block's offset in the file.
func checkBlock(name string, m *runMeta, i int, off int64, buf []byte) error {
	_, _, want := m.blockBounds(i)
	var prev []byte
	pos, n := 0, 0
	for pos < len(buf) {
		rec, sz, err := engines.DecodeRecord(buf[pos:], name, off+int64(pos))
		if errors.Is(err, engines.ErrTruncated) {
			return engines.Corruptf(name, off+int64(pos), "record runs past the end of its block at %d", off+int64(len(buf)))
		}
		if err != nil {
			return err
		}
		switch {
		case n == 0 && !bytes.Equal(rec.Key, m.fences.key(i)):
			return engines.Corruptf(name, off+int64(pos), "first key of block %d differs from its fence key", i)
		case n > 0 && bytes.Compare(prev, rec.Key) >= 0:
			return engines.Corruptf(name, off+int64(pos), "keys out of order")
		}
		prev = rec.Key
		pos += sz
		n++
	}
	if n != want {
		return engines.Corruptf(name, off, "block %d holds %d records, want %d", i, n, want)
	}
	if i == m.fences.n()-1 {
		if !bytes.Equal(prev, m.fences.lastKey) {
			return engines.Corruptf(name, off, "last key of the run differs from the fence index")
		}
	} else if bytes.Compare(prev, m.fences.key(i+1)) >= 0 {
		return engines.Corruptf(name, off, "block %d overlaps the next fence key", i)
	}
	return nil
}

// searchBlock finds key in a checked block. The returned value aliases buf.
func searchBlock(buf, key []byte) (kind byte, value []byte, found bool) {
	pos := 0
	for pos+engines.RecordHeaderSize <= len(buf) {
		kind := buf[pos+4]
		kl := int(binary.LittleEndian.Uint16(buf[pos+5:]))
		vl := int(binary.LittleEndian.Uint32(buf[pos+7:]))
		k := buf[pos+engines.RecordHeaderSize : pos+engines.RecordHeaderSize+kl]
		switch c := bytes.Compare(k, key); {
		case c == 0:
			vs := pos + engines.RecordHeaderSize + kl
			return kind, buf[vs : vs+vl], true
		case c > 0:
			return 0, nil, false
		}
		pos += engines.RecordHeaderSize + kl + vl
	}
	return 0, nil, false
}

// state is the engine's checkpoint state: the levels of live runs (each
// newest first) and the next run sequence number.
type state struct {
	nextSeq uint64
	levels  [][]engines.RunInfo
}

func (s *state) runs() []engines.RunInfo {
	var out []engines.RunInfo
	for _, l := range s.levels {
		out = append(out, l...)
	}
	return out
}

// encodeState encodes s in the CURRENT format.
func encodeState(s state) []byte {
	b := make([]byte, 0, 64)
	b = append(b, stateMagic...)
	b = binary.LittleEndian.AppendUint32(b, stateVersion)
	b = binary.LittleEndian.AppendUint64(b, s.nextSeq)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.levels)))
	for _, l := range s.levels {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(l)))
		for _, r := range l {
			b = binary.LittleEndian.AppendUint16(b, uint16(len(r.Name)))
			b = append(b, r.Name...)
			b = binary.LittleEndian.AppendUint64(b, uint64(r.Size))
			b = binary.LittleEndian.AppendUint32(b, r.CRC32C)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, engines.CastagnoliTable))
}

// decodeState decodes and validates a state blob; name is the file (or
// "checkpoint state") for errors.
func decodeState(name string, b []byte) (state, error) {
	bad := func(pos int, format string, args ...any) (state, error) {
		return state{}, engines.Corruptf(name, int64(pos), format, args...)
	}
	if len(b) < 8+4+8+4+4 {
		return bad(0, "state of %d bytes is too short", len(b))
	}
	if string(b[:8]) != stateMagic {
		return bad(0, "bad state magic %q", b[:8])
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != stateVersion {
		return bad(8, "unsupported state format version %d", v)
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, engines.CastagnoliTable), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return bad(len(b)-4, "state checksum mismatch (computed %08x, stored %08x)", got, want)
	}
	s := state{nextSeq: binary.LittleEndian.Uint64(b[12:])}
	nl := binary.LittleEndian.Uint32(b[20:])
	if nl > maxStateLevels {
		return bad(20, "%d levels exceed the limit of %d", nl, maxStateLevels)
	}
	pos := 24
	seen := map[string]bool{}
	for l := uint32(0); l < nl; l++ {
		if len(body)-pos < 4 {
			return bad(pos, "level %d cut short", l)
		}
		nr := binary.LittleEndian.Uint32(body[pos:])
		pos += 4
		if uint64(nr) > uint64(len(body)-pos)/(2+8+4) {
			return bad(pos-4, "level %d claims %d runs", l, nr)
		}
		level := make([]engines.RunInfo, 0, nr)
		for i := uint32(0); i < nr; i++ {
			if len(body)-pos < 2 {
				return bad(pos, "run entry cut short")
			}
			nlen := int(binary.LittleEndian.Uint16(body[pos:]))
			if len(body)-pos-2 < nlen+12 {
				return bad(pos, "run entry cut short")
			}
			rn := string(body[pos+2 : pos+2+nlen])
			if seq, _, ext, ok := engines.ParseRunName(rn); !ok || ext != runExt {
				return bad(pos, "bad run name %q", rn)
			} else if seq >= s.nextSeq {
				return bad(pos, "run %s has a sequence number not below the next (%d)", rn, s.nextSeq)
			}
			if seen[rn] {
				return bad(pos, "run %s listed twice", rn)
			}
			seen[rn] = true
			size := binary.LittleEndian.Uint64(body[pos+2+nlen:])
			if size < footerSize || size > 1<<62 {
				return bad(pos, "run %s has impossible size %d", rn, size)
			}
			level = append(level, engines.RunInfo{Name: rn, Size: int64(size), CRC32C: binary.LittleEndian.Uint32(body[pos+2+nlen+8:])})
			pos += 2 + nlen + 12
		}
		s.levels = append(s.levels, level)
	}
	if pos != len(body) {
		return bad(pos, "%d trailing bytes", len(body)-pos)
	}
	return s, nil
}
