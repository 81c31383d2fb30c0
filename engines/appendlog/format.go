package appendlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/tierkv/tierkv/engines"
)

// File names and format constants; see the package doc.
const (
	activeLogName = "active.log"
	currentName   = "CURRENT"
	extSealed     = "log"  // a sealed active log
	extMerged     = "run"  // a merge output
	extHint       = "hint" // a hint file

	formatVersion = 1
	footerSize    = 40
	hintEntryHdr  = 1 + 2 + 4 + 8
)

var (
	runMagic  = [8]byte{'t', 'k', 'v', 'a', 'l', 'r', 'u', 'n'}
	hintMagic = [8]byte{'t', 'k', 'v', 'a', 'l', 'h', 'n', 't'}
)

// footer is the trailer of runs and hint files.
type footer struct {
	BodyLen uint64 // bytes before the footer
	Count   uint64 // records or entries
	BodyCRC uint32 // CRC-32C of the body
	LinkCRC uint32 // hint: BodyCRC of its run; run: 0
}

// appendFooter appends the 40-byte footer with the given magic to dst.
func appendFooter(dst []byte, ft footer, magic [8]byte) []byte {
	var b [footerSize]byte
	binary.LittleEndian.PutUint64(b[0:], ft.BodyLen)
	binary.LittleEndian.PutUint64(b[8:], ft.Count)
	binary.LittleEndian.PutUint32(b[16:], ft.BodyCRC)
	binary.LittleEndian.PutUint32(b[20:], ft.LinkCRC)
	binary.LittleEndian.PutUint16(b[24:], formatVersion)
	copy(b[28:36], magic[:])
	binary.LittleEndian.PutUint32(b[36:], crc32.Checksum(b[:36], engines.CastagnoliTable))
	return append(dst, b[:]...)
}

// decodeFooter checks and decodes the footer at the end of a file of size
// fileSize whose last footerSize bytes are b. file names the file in errors.
func decodeFooter(b []byte, magic [8]byte, file string, fileSize int64) (footer, error) {
	off := fileSize - footerSize
	if fileSize < footerSize || len(b) != footerSize {
		return footer{}, engines.Corruptf(file, engines.UnknownOffset, "file of %d bytes is shorter than its %d-byte footer", fileSize, footerSize)
	}
	if !bytes.Equal(b[28:36], magic[:]) {
		return footer{}, engines.Corruptf(file, off+28, "bad footer magic %q, want %q", b[28:36], magic[:])
	}
	if got, want := binary.LittleEndian.Uint32(b[36:]), crc32.Checksum(b[:36], engines.CastagnoliTable); got != want {
		return footer{}, engines.Corruptf(file, off+36, "footer checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(b[24:]); v != formatVersion {
		return footer{}, engines.Corruptf(file, off+24, "unknown format version %d, want %d", v, formatVersion)
	}
	ft := footer{
		BodyLen: binary.LittleEndian.Uint64(b[0:]),
		Count:   binary.LittleEndian.Uint64(b[8:]),
		BodyCRC: binary.LittleEndian.Uint32(b[16:]),
		LinkCRC: binary.LittleEndian.Uint32(b[20:]),
	}
	if ft.BodyLen != uint64(off) {
		return footer{}, engines.Corruptf(file, off, "footer gives a body of %d bytes, file has %d", ft.BodyLen, off)
	}
	return ft, nil
}

// hintWriter encodes the entries of a hint file, in run-offset order.
type hintWriter struct {
	body  []byte
	count uint64
}

// add appends the entry for the record of key at off (n bytes, kind).
// Records must be added in offset order.
func (h *hintWriter) add(kind byte, key []byte, off uint64, n uint32) {
	h.body = appendHintEntry(h.body, kind, key, off, n)
	h.count++
}

// encode returns the hint file for a run whose body has CRC-32C runCRC.
func (h *hintWriter) encode(runCRC uint32) []byte {
	return appendFooter(h.body, footer{
		BodyLen: uint64(len(h.body)), Count: h.count,
		BodyCRC: crc32.Checksum(h.body, engines.CastagnoliTable), LinkCRC: runCRC,
	}, hintMagic)
}

func appendHintEntry(dst []byte, kind byte, key []byte, off uint64, n uint32) []byte {
	var b [hintEntryHdr]byte
	b[0] = kind
	binary.LittleEndian.PutUint16(b[1:], uint16(len(key)))
	binary.LittleEndian.PutUint32(b[3:], n)
	binary.LittleEndian.PutUint64(b[7:], off)
	dst = append(dst, b[:]...)
	return append(dst, key...)
}

// decodeHint checks a whole hint file and calls fn for each entry in order.
// runBody is the body length of the run it indexes: entries must lie inside.
// The caller checks the returned footer's LinkCRC against the run.
func decodeHint(data []byte, file string, runBody uint64, fn func(kind byte, key []byte, off uint64, n uint32)) (footer, error) {
	size := int64(len(data))
	if size < footerSize {
		return footer{}, engines.Corruptf(file, engines.UnknownOffset, "file of %d bytes is shorter than its %d-byte footer", size, footerSize)
	}
	ft, err := decodeFooter(data[size-footerSize:], hintMagic, file, size)
	if err != nil {
		return footer{}, err
	}
	body := data[:ft.BodyLen]
	if crc32.Checksum(body, engines.CastagnoliTable) != ft.BodyCRC {
		return footer{}, engines.Corruptf(file, engines.UnknownOffset, "hint body checksum mismatch")
	}
	var count, next uint64 // next: the lowest offset the next entry may have
	for p := 0; p < len(body); {
		off := int64(p)
		if len(body)-p < hintEntryHdr {
			return footer{}, engines.Corruptf(file, off, "hint entry header cut by the end of the body")
		}
		kind := body[p]
		klen := int(binary.LittleEndian.Uint16(body[p+1:]))
		n := binary.LittleEndian.Uint32(body[p+3:])
		roff := binary.LittleEndian.Uint64(body[p+7:])
		p += hintEntryHdr
		switch {
		case kind != engines.KindSet && kind != engines.KindDelete:
			return footer{}, engines.Corruptf(file, off, "unknown hint entry kind %d", kind)
		case klen == 0:
			return footer{}, engines.Corruptf(file, off, "hint entry with an empty key")
		case len(body)-p < klen:
			return footer{}, engines.Corruptf(file, off, "hint entry key cut by the end of the body")
		case uint64(n) < uint64(engines.RecordSize(klen, 0)) || uint64(n) > uint64(engines.RecordSize(klen, engines.MaxValueSize)):
			return footer{}, engines.Corruptf(file, off, "hint entry record size %d impossible for a %d-byte key", n, klen)
		case kind == engines.KindDelete && int(n) != engines.RecordSize(klen, 0):
			return footer{}, engines.Corruptf(file, off, "hint tombstone with a value")
		case roff > runBody || uint64(n) > runBody-roff:
			return footer{}, engines.Corruptf(file, off, "hint entry points to %d+%d, beyond the run's %d bytes", roff, n, runBody)
		case roff < next:
			return footer{}, engines.Corruptf(file, off, "hint entry at run offset %d overlaps or precedes the one before", roff)
		}
		next = roff + uint64(n)
		if fn != nil {
			fn(kind, body[p:p+klen], roff, n)
		}
		p += klen
		count++
	}
	if count != ft.Count {
		return footer{}, engines.Corruptf(file, size-footerSize+8, "hint footer counts %d entries, body has %d", ft.Count, count)
	}
	return ft, nil
}

// scanRecords reads the records in [start, end) of r, calling fn with each
// record's offset, its raw bytes and the decoded record (both alias a buffer
// valid only during the call). It returns the offset just after the last good
// record. With strict, anything but a clean sequence of good records up to end
// is a *engines.CorruptionError naming file and offset; without it (a log's
// recovery), scanning stops silently at the first record that is short or
// fails its checks. Lengths are checked against end before anything is
// allocated for them.
func scanRecords(r io.ReaderAt, file string, start, end int64, strict bool, fn func(off int64, raw []byte, rec engines.Record) error) (int64, error) {
	const chunk = 1 << 20
	buf := make([]byte, 0, min(chunk, max(end-start, 0)))
	pos := start     // file offset of buf[0]
	readPos := start // next offset to read
	for {
		i := 0
		for {
			off := pos + int64(i)
			rec, n, err := engines.DecodeRecord(buf[i:], file, off)
			if err == engines.ErrTruncated {
				break
			}
			if err != nil {
				if strict {
					return off, err
				}
				return off, nil
			}
			if fn != nil {
				if err := fn(off, buf[i:i+n], rec); err != nil {
					return off, err
				}
			}
			i += n
		}
		rest := copy(buf, buf[i:])
		buf = buf[:rest]
		pos += int64(i)
		if readPos >= end {
			if len(buf) == 0 {
				return pos, nil
			}
			if strict {
				return pos, engines.Corruptf(file, pos, "record cut short by the end of the run (%d bytes left)", len(buf))
			}
			return pos, nil
		}
		// Make room for at least the record at pos if its header is known.
		need := min(int64(chunk), end-pos)
		if _, klen, vlen, bad, err := engines.DecodeRecordHeader(buf); err == nil {
			rs := int64(engines.RecordSize(klen, vlen))
			if bad != "" || pos+rs > end {
				if strict {
					if bad != "" {
						return pos, engines.Corruptf(file, pos, "%s", bad)
					}
					return pos, engines.Corruptf(file, pos, "record of %d bytes runs past the end of the run", rs)
				}
				return pos, nil
			}
			need = max(need, rs)
		}
		if int64(cap(buf)) < need {
			nb := make([]byte, len(buf), need)
			copy(nb, buf)
			buf = nb
		}
		want := min(int64(cap(buf)-len(buf)), end-readPos)
		got, err := r.ReadAt(buf[len(buf):int64(len(buf))+want], readPos)
		if int64(got) < want {
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				return pos, fmt.Errorf("read %s at %d: %w", file, readPos, err)
			}
			end = readPos + int64(got) // the file is shorter than expected: its end is here
		}
		buf = buf[:len(buf)+got]
		readPos += int64(got)
	}
}

// runRef names one run and its hint file in the state.
type runRef struct {
	Run  string `json:"run"`
	Hint string `json:"hint"`
}

// state is the engine state blob (Checkpoint.State) and the body of CURRENT.
type state struct {
	Format    int        `json:"format"`
	Kind      string     `json:"kind"`
	NextSeq   uint64     `json:"next_seq"`
	SealFloor uint64     `json:"seal_floor,omitempty"`
	Levels    [][]runRef `json:"levels"`
}

// encodeState returns the JSON of st.
func encodeState(st state) []byte {
	st.Format, st.Kind = formatVersion, Kind
	if st.Levels == nil {
		st.Levels = [][]runRef{}
	}
	b, err := json.Marshal(st)
	if err != nil {
		panic(fmt.Sprintf("appendlog: marshal state: %v", err)) // plain structs cannot fail
	}
	return b
}

// decodeState parses and validates a state blob. file names it in errors.
func decodeState(b []byte, file string) (state, error) {
	var st state
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return state{}, &engines.CorruptionError{File: file, Offset: dec.InputOffset(), Reason: "bad state JSON", Err: err}
	}
	if st.Kind != Kind {
		return state{}, fmt.Errorf("decode %s: state of kind %q: %w", file, st.Kind, engines.ErrKindMismatch)
	}
	if st.Format != formatVersion {
		return state{}, engines.Corruptf(file, engines.UnknownOffset, "unknown state format %d, want %d", st.Format, formatVersion)
	}
	seen := map[string]bool{}
	for l, lvl := range st.Levels {
		for _, rr := range lvl {
			for _, c := range []struct {
				name string
				exts []string
			}{{rr.Run, []string{extSealed, extMerged}}, {rr.Hint, []string{extHint}}} {
				seq, _, ext, ok := engines.ParseRunName(c.name)
				if !ok || (ext != c.exts[0] && (len(c.exts) < 2 || ext != c.exts[1])) {
					return state{}, engines.Corruptf(file, engines.UnknownOffset, "level %d names %q, not a run name of this engine", l, c.name)
				}
				if id := c.name[:25]; seen[id] { // seq-nonce: a RunNamer never repeats it
					return state{}, engines.Corruptf(file, engines.UnknownOffset, "run %s named twice", c.name)
				}
				if seq >= st.NextSeq {
					return state{}, engines.Corruptf(file, engines.UnknownOffset, "run %s has a sequence number not below next_seq %d", c.name, st.NextSeq)
				}
				seen[c.name[:25]] = true
			}
		}
	}
	return st, nil
}

// encodeCurrent returns the contents of CURRENT for st.
func encodeCurrent(st state) []byte {
	body := encodeState(st)
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum(body, engines.CastagnoliTable))
	out := append(body, '\n')
	out = append(out, "crc32c "...)
	out = append(out, hex.EncodeToString(sum[:])...)
	return append(out, '\n')
}

// decodeCurrent checks and parses CURRENT.
func decodeCurrent(b []byte) (state, error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return state{}, engines.Corruptf(currentName, engines.UnknownOffset, "no checksum line")
	}
	body, tail := b[:nl], b[nl+1:]
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum(body, engines.CastagnoliTable))
	if want := "crc32c " + hex.EncodeToString(sum[:]) + "\n"; string(tail) != want {
		return state{}, engines.Corruptf(currentName, int64(nl+1), "checksum line %q does not match the state (want %q)", tail, want)
	}
	return decodeState(body, currentName)
}
