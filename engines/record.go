package engines

import (
	"encoding/binary"
	"hash/crc32"
)

// Record kinds.
const (
	// KindSet is a key/value record.
	KindSet byte = 1
	// KindDelete is a tombstone; its value is empty.
	KindDelete byte = 2
)

// RecordHeaderSize is the size of a record header: crc32c, kind, key length
// and value length.
const RecordHeaderSize = 4 + 1 + 2 + 4

// CastagnoliTable is the CRC-32C table used for every checksum in tierkv.
var CastagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// Record is one decoded record. Key and Value alias the decoded buffer.
type Record struct {
	Kind  byte
	Key   []byte
	Value []byte
}

// RecordSize returns the encoded size of a record with the given key and
// value lengths.
func RecordSize(klen, vlen int) int { return RecordHeaderSize + klen + vlen }

// AppendRecord appends the framed record to dst and returns the extended
// slice. The caller checks limits first (CheckKV); kind must be KindSet or
// KindDelete.
func AppendRecord(dst []byte, kind byte, key, value []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, RecordHeaderSize)...)
	dst[n+4] = kind
	binary.LittleEndian.PutUint16(dst[n+5:], uint16(len(key)))
	binary.LittleEndian.PutUint32(dst[n+7:], uint32(len(value)))
	dst = append(dst, key...)
	dst = append(dst, value...)
	binary.LittleEndian.PutUint32(dst[n:], crc32.Checksum(dst[n+4:], CastagnoliTable))
	return dst
}

// PutRecord encodes the record into dst, which must have room for
// RecordSize(len(key), len(value)) bytes, and returns the bytes written. It
// does not allocate.
func PutRecord(dst []byte, kind byte, key, value []byte) int {
	dst[4] = kind
	binary.LittleEndian.PutUint16(dst[5:], uint16(len(key)))
	binary.LittleEndian.PutUint32(dst[7:], uint32(len(value)))
	copy(dst[RecordHeaderSize:], key)
	copy(dst[RecordHeaderSize+len(key):], value)
	n := RecordHeaderSize + len(key) + len(value)
	binary.LittleEndian.PutUint32(dst, crc32.Checksum(dst[4:n], CastagnoliTable))
	return n
}

// DecodeRecordHeader reads the lengths from a header without checking the
// checksum. It returns ErrTruncated if buf is shorter than a header and a
// reason string (non-empty) if the header itself is invalid.
func DecodeRecordHeader(buf []byte) (kind byte, klen, vlen int, bad string, err error) {
	if len(buf) < RecordHeaderSize {
		return 0, 0, 0, "", ErrTruncated
	}
	kind = buf[4]
	klen = int(binary.LittleEndian.Uint16(buf[5:]))
	vlen = int(binary.LittleEndian.Uint32(buf[7:]))
	switch {
	case kind != KindSet && kind != KindDelete:
		bad = "unknown record kind"
	case klen == 0:
		bad = "zero-length key"
	case vlen > MaxValueSize:
		bad = "value length beyond limit"
	case kind == KindDelete && vlen != 0:
		bad = "tombstone with a value"
	}
	return kind, klen, vlen, bad, nil
}

// DecodeRecord decodes the record at the start of buf and returns it and its
// encoded size. file and off name the position in errors. A buffer that ends
// before the record does returns ErrTruncated (wrapped with the offset only by
// the caller); a record that is complete but fails its checks returns a
// *CorruptionError. The returned record aliases buf.
func DecodeRecord(buf []byte, file string, off int64) (Record, int, error) {
	kind, klen, vlen, bad, err := DecodeRecordHeader(buf)
	if err != nil {
		return Record{}, 0, err
	}
	n := RecordHeaderSize + klen + vlen
	if len(buf) < n {
		if bad != "" {
			// A header that is garbage and also runs past the end: the
			// checksum cannot be tested, so it is treated as a torn tail.
			return Record{}, 0, ErrTruncated
		}
		return Record{}, 0, ErrTruncated
	}
	if crc32.Checksum(buf[4:n], CastagnoliTable) != binary.LittleEndian.Uint32(buf) {
		return Record{}, 0, Corruptf(file, off, "record checksum mismatch")
	}
	if bad != "" {
		return Record{}, 0, Corruptf(file, off, "%s", bad)
	}
	return Record{Kind: kind, Key: buf[RecordHeaderSize : RecordHeaderSize+klen], Value: buf[RecordHeaderSize+klen : n]}, n, nil
}
