package hybridlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/tierkv/tierkv/engines"
)

// File extensions of the engine's runs (see the package doc for layouts).
const (
	extRun  = "hlog"
	extHint = "hint"
	// currentName is the private state file; engines.ParseRunName rejects it.
	currentName = "CURRENT"
)

const formatVersion = 1

// Run footer.
const (
	footerSize  = 44
	runMagic    = "tkvhlrun"
	flagMerged  = 1
	hintHdrSize = 40
	hintMagic   = "tkvhhint"
	stateMagic  = "HLST"
	curMagic    = "tkvhlcur"
)

// footer is the fixed trailer of a run file.
type footer struct {
	dataLen uint64 // bytes of records before the footer
	count   uint64 // number of records
	start   uint64 // logical address of the first record (log runs), 0 for merged runs
	merged  bool   // written by a merge rather than a flush
}

func flagsOf(merged bool) uint32 {
	if merged {
		return flagMerged
	}
	return 0
}

// appendFooter appends the encoded footer to dst.
func appendFooter(dst []byte, f footer) []byte {
	n := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, f.dataLen)
	dst = binary.LittleEndian.AppendUint64(dst, f.count)
	dst = binary.LittleEndian.AppendUint64(dst, f.start)
	dst = binary.LittleEndian.AppendUint32(dst, flagsOf(f.merged))
	dst = binary.LittleEndian.AppendUint32(dst, formatVersion)
	dst = append(dst, runMagic...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[n:], engines.CastagnoliTable))
}

// decodeFooter decodes the footerSize bytes in buf, which start at offset off
// of file.
func decodeFooter(buf []byte, file string, off int64) (footer, error) {
	if len(buf) != footerSize {
		return footer{}, engines.Corruptf(file, off, "run footer is %d bytes, want %d", len(buf), footerSize)
	}
	if string(buf[32:40]) != runMagic {
		return footer{}, engines.Corruptf(file, off+32, "bad run magic")
	}
	if crc32.Checksum(buf[:40], engines.CastagnoliTable) != binary.LittleEndian.Uint32(buf[40:]) {
		return footer{}, engines.Corruptf(file, off+40, "run footer checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(buf[28:]); v != formatVersion {
		return footer{}, engines.Corruptf(file, off+28, "unknown run format version %d", v)
	}
	flags := binary.LittleEndian.Uint32(buf[24:])
	if flags&^flagMerged != 0 {
		return footer{}, engines.Corruptf(file, off+24, "unknown run flags %#x", flags)
	}
	f := footer{
		dataLen: binary.LittleEndian.Uint64(buf[0:]),
		count:   binary.LittleEndian.Uint64(buf[8:]),
		start:   binary.LittleEndian.Uint64(buf[16:]),
		merged:  flags&flagMerged != 0,
	}
	if f.dataLen != uint64(off) {
		return footer{}, engines.Corruptf(file, off, "run footer records %d data bytes, file has %d", f.dataLen, off)
	}
	return f, nil
}

// checkRun decodes a whole run file held in buf: the footer and every record,
// checking each record's checksum and the footer's count. It is what `verify`
// style tools and the fuzz target use; the engine itself reads single records.
func checkRun(buf []byte, file string, fn func(off int64, rec engines.Record) error) (footer, error) {
	if len(buf) < footerSize {
		return footer{}, engines.Corruptf(file, int64(len(buf)), "run file of %d bytes is shorter than its footer", len(buf))
	}
	dataLen := len(buf) - footerSize
	f, err := decodeFooter(buf[dataLen:], file, int64(dataLen))
	if err != nil {
		return footer{}, err
	}
	var count uint64
	for off := 0; off < dataLen; {
		rec, n, err := engines.DecodeRecord(buf[off:dataLen], file, int64(off))
		if errors.Is(err, engines.ErrTruncated) {
			return footer{}, engines.Corruptf(file, int64(off), "record runs past the end of the run data")
		}
		if err != nil {
			return footer{}, err
		}
		if fn != nil {
			if err := fn(int64(off), rec); err != nil {
				return footer{}, err
			}
		}
		count++
		off += n
	}
	if count != f.count {
		return footer{}, engines.Corruptf(file, int64(dataLen), "run footer records %d records, data has %d", f.count, count)
	}
	return f, nil
}

// hintHeader is the header of a hint file: it describes the run the hint
// indexes.
type hintHeader struct {
	merged  bool
	start   uint64 // the run's start address (log runs)
	dataLen uint64 // the run's data bytes (file size minus footer)
	count   uint64 // entries (= records of the run)
}

// hintEntry is one decoded hint entry: the record at off of the run.
type hintEntry struct {
	kind byte
	key  []byte // aliases the hint buffer
	off  uint64 // offset of the record in the run
	vlen int
}

// appendHintHeader starts a hint file; count and dataLen are patched by
// finishHint.
func appendHintHeader(dst []byte, merged bool, start uint64) []byte {
	dst = append(dst, hintMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, formatVersion)
	dst = binary.LittleEndian.AppendUint32(dst, flagsOf(merged))
	dst = binary.LittleEndian.AppendUint64(dst, start)
	dst = binary.LittleEndian.AppendUint64(dst, 0)  // dataLen, patched
	return binary.LittleEndian.AppendUint64(dst, 0) // count, patched
}

// appendHintEntry appends the entry of one record.
func appendHintEntry(dst []byte, kind byte, key []byte, vlen int) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	kv := uint64(0)
	if kind == engines.KindSet {
		kv = uint64(vlen) + 1
	}
	dst = binary.AppendUvarint(dst, kv)
	return append(dst, key...)
}

// finishHint patches the header and appends the checksum.
func finishHint(dst []byte, dataLen, count uint64) []byte {
	binary.LittleEndian.PutUint64(dst[24:], dataLen)
	binary.LittleEndian.PutUint64(dst[32:], count)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst, engines.CastagnoliTable))
}

// decodeHint checks a whole hint file and calls fn for every entry in run
// order. Keys passed to fn alias buf.
func decodeHint(buf []byte, file string, fn func(e hintEntry)) (hintHeader, error) {
	if len(buf) < hintHdrSize+4 {
		return hintHeader{}, engines.Corruptf(file, int64(len(buf)), "hint file of %d bytes is shorter than its header and checksum", len(buf))
	}
	if string(buf[:8]) != hintMagic {
		return hintHeader{}, engines.Corruptf(file, 0, "bad hint magic")
	}
	end := len(buf) - 4
	if crc32.Checksum(buf[:end], engines.CastagnoliTable) != binary.LittleEndian.Uint32(buf[end:]) {
		return hintHeader{}, engines.Corruptf(file, int64(end), "hint checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(buf[8:]); v != formatVersion {
		return hintHeader{}, engines.Corruptf(file, 8, "unknown hint format version %d", v)
	}
	flags := binary.LittleEndian.Uint32(buf[12:])
	if flags&^flagMerged != 0 {
		return hintHeader{}, engines.Corruptf(file, 12, "unknown hint flags %#x", flags)
	}
	h := hintHeader{
		merged:  flags&flagMerged != 0,
		start:   binary.LittleEndian.Uint64(buf[16:]),
		dataLen: binary.LittleEndian.Uint64(buf[24:]),
		count:   binary.LittleEndian.Uint64(buf[32:]),
	}
	var off, count uint64
	for p := hintHdrSize; p < end; {
		at := int64(p)
		klen, n := binary.Uvarint(buf[p:end])
		if n <= 0 || klen == 0 || klen > engines.MaxKeySize {
			return hintHeader{}, engines.Corruptf(file, at, "bad hint entry key length")
		}
		p += n
		kv, n := binary.Uvarint(buf[p:end])
		if n <= 0 || kv > engines.MaxValueSize+1 {
			return hintHeader{}, engines.Corruptf(file, at, "bad hint entry value length")
		}
		p += n
		if uint64(end-p) < klen {
			return hintHeader{}, engines.Corruptf(file, at, "hint entry key runs past the end")
		}
		e := hintEntry{kind: engines.KindDelete, key: buf[p : p+int(klen)], off: off}
		if kv > 0 {
			e.kind, e.vlen = engines.KindSet, int(kv-1)
		}
		p += int(klen)
		off += uint64(engines.RecordSize(int(klen), e.vlen))
		if off > h.dataLen {
			return hintHeader{}, engines.Corruptf(file, at, "hint entries exceed the run's %d data bytes", h.dataLen)
		}
		count++
		if fn != nil {
			fn(e)
		}
	}
	if off != h.dataLen || count != h.count {
		return hintHeader{}, engines.Corruptf(file, int64(end), "hint holds %d entries over %d bytes, header says %d over %d", count, off, h.count, h.dataLen)
	}
	return h, nil
}

// state is the engine-state blob of a checkpoint: the levels of runs and the
// counters to continue from.
type state struct {
	nextSeq  uint64     // sequence number of the next run name
	nextAddr uint64     // logical address where the log continues
	levels   [][]string // levels[0] is the newest level; each level oldest run first
}

func (s state) encode() []byte {
	b := append([]byte(stateMagic), formatVersion)
	b = binary.AppendUvarint(b, s.nextSeq)
	b = binary.AppendUvarint(b, s.nextAddr)
	b = binary.AppendUvarint(b, uint64(len(s.levels)))
	for _, l := range s.levels {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, name := range l {
			b = binary.AppendUvarint(b, uint64(len(name)))
			b = append(b, name...)
		}
	}
	return b
}

// stateReader reads uvarints and strings, remembering the first error.
type stateReader struct {
	b    []byte
	p    int
	file string
	base int64
	err  error
}

func (r *stateReader) fail(reason string) {
	if r.err == nil {
		r.err = engines.Corruptf(r.file, r.base+int64(r.p), "%s", reason)
	}
}

func (r *stateReader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.p:])
	if n <= 0 || v > max {
		r.fail("bad " + what)
		return 0
	}
	r.p += n
	return v
}

func (r *stateReader) str(what string) string {
	n := r.uvarint(what+" length", 255)
	if r.err != nil {
		return ""
	}
	if uint64(len(r.b)-r.p) < n {
		r.fail(what + " runs past the end")
		return ""
	}
	s := string(r.b[r.p : r.p+int(n)])
	r.p += int(n)
	return s
}

// decodeState decodes and validates a state blob; file and base name its
// position in errors.
func decodeState(b []byte, file string, base int64) (state, error) {
	if len(b) < 5 || string(b[:4]) != stateMagic {
		return state{}, engines.Corruptf(file, base, "bad state magic")
	}
	if b[4] != formatVersion {
		return state{}, engines.Corruptf(file, base+4, "unknown state version %d", b[4])
	}
	r := &stateReader{b: b, p: 5, file: file, base: base}
	var s state
	s.nextSeq = r.uvarint("next run sequence", 1<<63)
	s.nextAddr = r.uvarint("next address", addrMask)
	nl := r.uvarint("level count", 64)
	seen := map[string]bool{}
	for i := uint64(0); i < nl && r.err == nil; i++ {
		nr := r.uvarint("run count", 1<<20)
		var level []string
		for j := uint64(0); j < nr && r.err == nil; j++ {
			name := r.str("run name")
			if r.err != nil {
				break
			}
			seq, _, ext, ok := engines.ParseRunName(name)
			switch {
			case !ok || ext != extRun:
				r.fail(fmt.Sprintf("run name %q is not a %s run", name, extRun))
			case seq >= s.nextSeq:
				r.fail(fmt.Sprintf("run %s is not below the next sequence %d", name, s.nextSeq))
			case seen[name]:
				r.fail(fmt.Sprintf("run %s listed twice", name))
			}
			seen[name] = true
			level = append(level, name)
		}
		s.levels = append(s.levels, level)
	}
	if r.err == nil && r.p != len(b) {
		r.fail("trailing bytes after state")
	}
	if r.err != nil {
		return state{}, r.err
	}
	return s, nil
}

// encodeCurrent encodes the private CURRENT file: the live runs with their
// sizes and checksums, and the state blob.
func encodeCurrent(cp engines.Checkpoint) []byte {
	b := append([]byte(nil), curMagic...)
	b = binary.LittleEndian.AppendUint32(b, formatVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(cp.State)))
	b = append(b, cp.State...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(cp.Runs)))
	for _, r := range cp.Runs {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(r.Name)))
		b = append(b, r.Name...)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Size))
		b = binary.LittleEndian.AppendUint32(b, r.CRC32C)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, engines.CastagnoliTable))
}

// decodeCurrent decodes and validates the CURRENT file.
func decodeCurrent(b []byte, file string) (engines.Checkpoint, state, error) {
	if len(b) < 8+4+4+4+4 {
		return engines.Checkpoint{}, state{}, engines.Corruptf(file, int64(len(b)), "file of %d bytes is too short", len(b))
	}
	if string(b[:8]) != curMagic {
		return engines.Checkpoint{}, state{}, engines.Corruptf(file, 0, "bad magic")
	}
	end := len(b) - 4
	if crc32.Checksum(b[:end], engines.CastagnoliTable) != binary.LittleEndian.Uint32(b[end:]) {
		return engines.Checkpoint{}, state{}, engines.Corruptf(file, int64(end), "checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != formatVersion {
		return engines.Checkpoint{}, state{}, engines.Corruptf(file, 8, "unknown format version %d", v)
	}
	sl := int(binary.LittleEndian.Uint32(b[12:]))
	p := 16
	if sl > end-p-4 {
		return engines.Checkpoint{}, state{}, engines.Corruptf(file, 12, "state length %d runs past the end", sl)
	}
	cp := engines.Checkpoint{Kind: Kind, State: slices.Clone(b[p : p+sl])}
	st, err := decodeState(cp.State, file, int64(p))
	if err != nil {
		return engines.Checkpoint{}, state{}, err
	}
	p += sl
	n := int(binary.LittleEndian.Uint32(b[p:]))
	p += 4
	for i := 0; i < n; i++ {
		if end-p < 2 {
			return engines.Checkpoint{}, state{}, engines.Corruptf(file, int64(p), "run list runs past the end")
		}
		nl := int(binary.LittleEndian.Uint16(b[p:]))
		if end-p < 2+nl+12 {
			return engines.Checkpoint{}, state{}, engines.Corruptf(file, int64(p), "run entry runs past the end")
		}
		name := string(b[p+2 : p+2+nl])
		size := binary.LittleEndian.Uint64(b[p+2+nl:])
		if size > 1<<62 {
			return engines.Checkpoint{}, state{}, engines.Corruptf(file, int64(p), "run %s has an impossible size", name)
		}
		cp.Runs = append(cp.Runs, engines.RunInfo{Name: name, Size: int64(size), CRC32C: binary.LittleEndian.Uint32(b[p+2+nl+8:])})
		p += 2 + nl + 12
	}
	if p != end {
		return engines.Checkpoint{}, state{}, engines.Corruptf(file, int64(p), "trailing bytes after run list")
	}
	if err := checkRunsMatchState(cp, st); err != nil {
		return engines.Checkpoint{}, state{}, engines.Corruptf(file, 16, "%v", err)
	}
	return cp, st, nil
}

// hintName returns the name of the hint file of run name.
func hintName(run string) string { return run[:len(run)-len(extRun)] + extHint }

// checkRunsMatchState checks that cp.Runs lists exactly the data and hint
// files of the state's runs.
func checkRunsMatchState(cp engines.Checkpoint, st state) error {
	want := map[string]bool{}
	for _, l := range st.levels {
		for _, n := range l {
			want[n] = true
			want[hintName(n)] = true
		}
	}
	if len(cp.Runs) != len(want) {
		return fmt.Errorf("checkpoint lists %d files, state needs %d", len(cp.Runs), len(want))
	}
	for _, r := range cp.Runs {
		if !want[r.Name] {
			return fmt.Errorf("checkpoint file %q is not named by the state", r.Name)
		}
		delete(want, r.Name)
	}
	return nil
}
