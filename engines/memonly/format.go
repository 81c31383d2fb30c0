package memonly

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"

	"github.com/tierkv/tierkv/engines"
)

// Format constants; see the package doc for the layouts.
const (
	// FormatVersion is the version of the dump, state and CURRENT formats.
	FormatVersion = 1
	// DumpExt is the extension of dump run names.
	DumpExt = "dump"
	// CurrentFile is the name of the private file naming the current dump.
	CurrentFile = "CURRENT"

	footerSize   = 24
	stateSize    = 16
	dumpMagic    = "TKVMEMDP"
	currentMagic = "TKVMEMCU"
)

// dumpWriter encodes a dump: records, then the footer.
type dumpWriter struct {
	w     io.Writer
	crc   uint32
	count uint64
	buf   []byte
}

func newDumpWriter(w io.Writer) *dumpWriter { return &dumpWriter{w: w} }

// add appends one record. Keys must come in strictly ascending order.
func (d *dumpWriter) add(key, value []byte) error {
	d.buf = engines.AppendRecord(d.buf[:0], engines.KindSet, key, value)
	d.crc = crc32.Update(d.crc, engines.CastagnoliTable, d.buf)
	d.count++
	_, err := d.w.Write(d.buf)
	return err
}

// finish writes the footer.
func (d *dumpWriter) finish() error {
	var f [footerSize]byte
	binary.LittleEndian.PutUint64(f[0:], d.count)
	binary.LittleEndian.PutUint32(f[8:], d.crc)
	binary.LittleEndian.PutUint32(f[12:], FormatVersion)
	copy(f[16:], dumpMagic)
	_, err := d.w.Write(f[:])
	return err
}

// DecodeDump checks a whole dump file and calls fn for each record, in key
// order. file names the dump in errors. Every failed check returns a
// *engines.CorruptionError naming file and the offset of the bad structure;
// an error returned by fn is returned as is. key and value alias data.
func DecodeDump(data []byte, file string, fn func(key, value []byte) error) (count uint64, err error) {
	if len(data) < footerSize {
		return 0, engines.Corruptf(file, engines.UnknownOffset, "dump of %d bytes is shorter than its %d-byte footer", len(data), footerSize)
	}
	fo := len(data) - footerSize
	f := data[fo:]
	if string(f[16:24]) != dumpMagic {
		return 0, engines.Corruptf(file, int64(fo+16), "bad dump magic %q", f[16:24])
	}
	if v := binary.LittleEndian.Uint32(f[12:]); v != FormatVersion {
		return 0, engines.Corruptf(file, int64(fo+12), "unknown dump format version %d", v)
	}
	want := binary.LittleEndian.Uint64(f[0:])
	body := data[:fo]
	if c := crc32.Checksum(body, engines.CastagnoliTable); c != binary.LittleEndian.Uint32(f[8:]) {
		return 0, engines.Corruptf(file, int64(fo+8), "dump body checksum mismatch")
	}
	// The smallest record is a header and a one-byte key.
	if want > uint64(len(body))/(engines.RecordHeaderSize+1) {
		return 0, engines.Corruptf(file, int64(fo), "record count %d does not fit in a %d-byte body", want, len(body))
	}
	var prev []byte
	off := 0
	for off < len(body) {
		rec, n, err := engines.DecodeRecord(body[off:], file, int64(off))
		if errors.Is(err, engines.ErrTruncated) {
			return count, engines.Corruptf(file, int64(off), "record runs past the end of the dump body")
		}
		if err != nil {
			return count, err
		}
		if rec.Kind != engines.KindSet {
			return count, engines.Corruptf(file, int64(off), "record kind %d in a dump", rec.Kind)
		}
		if count > 0 && bytes.Compare(prev, rec.Key) >= 0 {
			return count, engines.Corruptf(file, int64(off), "keys out of order")
		}
		if err := fn(rec.Key, rec.Value); err != nil {
			return count, err
		}
		prev = rec.Key
		count++
		off += n
	}
	if count != want {
		return count, engines.Corruptf(file, int64(fo), "footer counts %d records, body holds %d", want, count)
	}
	return count, nil
}

// encodeState encodes the checkpoint State blob.
func encodeState(nextSeq uint64) []byte {
	b := make([]byte, stateSize)
	binary.LittleEndian.PutUint32(b[0:], FormatVersion)
	binary.LittleEndian.PutUint64(b[4:], nextSeq)
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(b[:12], engines.CastagnoliTable))
	return b
}

// decodeState decodes the checkpoint State blob.
func decodeState(b []byte) (nextSeq uint64, err error) {
	if len(b) != stateSize {
		return 0, engines.Corruptf("checkpoint state", engines.UnknownOffset, "state of %d bytes, want %d", len(b), stateSize)
	}
	if crc32.Checksum(b[:12], engines.CastagnoliTable) != binary.LittleEndian.Uint32(b[12:]) {
		return 0, engines.Corruptf("checkpoint state", 12, "state checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(b); v != FormatVersion {
		return 0, engines.Corruptf("checkpoint state", engines.UnknownOffset, "unknown state format version %d", v)
	}
	return binary.LittleEndian.Uint64(b[4:]), nil
}

// current is the content of the CURRENT file.
type current struct {
	nextSeq uint64
	run     *engines.RunInfo // nil: empty state
}

func encodeCurrent(c current) []byte {
	b := make([]byte, 0, 64)
	b = append(b, currentMagic...)
	b = binary.LittleEndian.AppendUint32(b, FormatVersion)
	b = binary.LittleEndian.AppendUint64(b, c.nextSeq)
	if c.run == nil {
		b = append(b, 0)
		b = append(b, make([]byte, 8+4+2)...)
	} else {
		b = append(b, 1)
		b = binary.LittleEndian.AppendUint64(b, uint64(c.run.Size))
		b = binary.LittleEndian.AppendUint32(b, c.run.CRC32C)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(c.run.Name)))
		b = append(b, c.run.Name...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, engines.CastagnoliTable))
}

// decodeCurrent decodes the CURRENT file.
func decodeCurrent(b []byte) (current, error) {
	const fixed = 8 + 4 + 8 + 1 + 8 + 4 + 2
	if len(b) < fixed+4 {
		return current{}, engines.Corruptf(CurrentFile, engines.UnknownOffset, "file of %d bytes is too short", len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, engines.CastagnoliTable) != sum {
		return current{}, engines.Corruptf(CurrentFile, int64(len(body)), "checksum mismatch")
	}
	if string(b[:8]) != currentMagic {
		return current{}, engines.Corruptf(CurrentFile, 0, "bad magic %q", b[:8])
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != FormatVersion {
		return current{}, engines.Corruptf(CurrentFile, 8, "unknown format version %d", v)
	}
	c := current{nextSeq: binary.LittleEndian.Uint64(b[12:])}
	flags := b[20]
	size := binary.LittleEndian.Uint64(b[21:])
	crc := binary.LittleEndian.Uint32(b[29:])
	nlen := int(binary.LittleEndian.Uint16(b[33:]))
	if fixed+nlen != len(body) {
		return current{}, engines.Corruptf(CurrentFile, 33, "name length %d does not match the file size", nlen)
	}
	name := string(body[fixed:])
	switch flags {
	case 0:
		if size != 0 || crc != 0 || nlen != 0 {
			return current{}, engines.Corruptf(CurrentFile, 20, "empty state with a run")
		}
	case 1:
		if _, _, ext, ok := engines.ParseRunName(name); !ok || ext != DumpExt {
			return current{}, engines.Corruptf(CurrentFile, fixed, "bad run name %q", name)
		}
		if size > 1<<62 {
			return current{}, engines.Corruptf(CurrentFile, 21, "bad run size %d", size)
		}
		c.run = &engines.RunInfo{Name: name, Size: int64(size), CRC32C: crc}
	default:
		return current{}, engines.Corruptf(CurrentFile, 20, "unknown flags %#x", flags)
	}
	return c, nil
}
