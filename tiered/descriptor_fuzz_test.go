package tiered

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
)

// The fuzz targets of the JSON descriptors tiered reads from disk (STORE,
// RESTORING) and from the bucket (leases/<id>, gc/<sweep>). They share one
// property, checked by fuzzDescriptor: no input panics; an input that is
// rejected gives an error matching engines.ErrCorrupt that names the file or
// object; an accepted input re-encodes (encodeDescriptor) with the checksum
// it carried, to bytes that decode again to the same value (equal canonical
// encodings), so nothing accepted is lost or changed by a rewrite.

// Sample descriptors: the valid seeds.

func sampleRestoreMarker() restoreMarker {
	return restoreMarker{Version: 7, Previous: "data-000002", Staging: []string{"data-000003", "data-000004"}}
}

var sampleTime = time.Date(2026, 11, 30, 20, 0, 0, 123456789, time.UTC)

func sampleLease() lease {
	return lease{
		WriterID: "host/1/abcd", StoreID: "00112233aabbccdd",
		Written: sampleTime, Expires: sampleTime.Add(time.Hour),
		Runs: []string{"000001.sst", "L1-000007.run", "index-3"},
	}
}

func sampleSweep(done bool) sweep {
	w := sweep{
		Started: sampleTime, Deadline: sampleTime.Add(sweepTimeout),
		Candidates: []string{"000001.sst", "000002.sst"},
	}
	if done {
		w.Done, w.Deleted = true, []string{"000002.sst"}
	}
	return w
}

// descriptorCodec decodes one kind of descriptor and re-encodes a decoded
// value (on a copy: encodeDescriptor rewrites the checksum field).
type descriptorCodec[T any] struct {
	name   string // the file or object name errors must carry
	decode func([]byte) (T, error)
	encode func(T) ([]byte, error)
	sum    func(T) string // the checksum field of a decoded value
}

// seedsOf returns good, a few truncations of it, and hand-made edge cases
// shared by every descriptor.
func seedsOf(good ...[]byte) [][]byte {
	seeds := [][]byte{
		{},
		[]byte(`{}`),
		[]byte(`null`),
		[]byte(`[]`),
		[]byte(`{"format_version":1,"checksum":"00000000"}`),
		[]byte(`{"format_version":2}`),
	}
	for _, b := range good {
		seeds = append(seeds, b)
		for _, n := range []int{1, 2, 16, len(b) / 2, len(b) - 2, len(b) - 1} {
			if n > 0 && n < len(b) {
				seeds = append(seeds, b[:n])
			}
		}
		seeds = append(seeds, append(bytes.Clone(b), []byte(`{}`)...)) // trailing data
		var compact bytes.Buffer
		if err := json.Compact(&compact, b); err == nil {
			seeds = append(seeds, compact.Bytes()) // same content, other layout
		}
	}
	return seeds
}

// fuzzDescriptor runs the property of the file comment over c.
func fuzzDescriptor[T any](f *testing.F, c descriptorCodec[T], good ...[]byte) {
	f.Helper()
	for _, b := range good {
		if _, err := c.decode(b); err != nil {
			f.Fatalf("valid %s seed does not decode: %v", c.name, err)
		}
	}
	for _, s := range seedsOf(good...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := c.decode(b)
		if err != nil {
			if !errors.Is(err, engines.ErrCorrupt) {
				t.Fatalf("rejected %s: error %v does not match engines.ErrCorrupt", c.name, err)
			}
			if !strings.Contains(err.Error(), c.name) {
				t.Fatalf("rejected %s: error %q does not name it", c.name, err)
			}
			return
		}
		again, err := c.encode(v)
		if err != nil {
			t.Fatalf("accepted %s does not re-encode: %v", c.name, err)
		}
		v2, err := c.decode(again)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v\n%s", c.name, err, again)
		}
		if got, want := c.sum(v2), c.sum(v); got != want {
			t.Fatalf("re-encoded %s has checksum %q, the accepted input %q", c.name, got, want)
		}
		twice, err := c.encode(v2)
		if err != nil {
			t.Fatalf("re-decoded %s does not re-encode: %v", c.name, err)
		}
		if !bytes.Equal(twice, again) {
			t.Fatalf("%s changes through a rewrite:\n%s\nthen\n%s", c.name, again, twice)
		}
	})
}

// encodeSeeds encodes valid descriptors (format version set) for name.
func encodeSeeds(f *testing.F, name string, ds ...descriptor) [][]byte {
	f.Helper()
	var out [][]byte
	for _, d := range ds {
		b, err := encodeDescriptor(name, d)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzDecodeStoreFile(f *testing.F) {
	plain := sampleStoreFile()
	rollback := sampleStoreFile()
	rollback.RollbackOf, rollback.Metadata, rollback.Params = 20, nil, map[string]string{}
	plain.FormatVersion, rollback.FormatVersion = storeFormatVersion, storeFormatVersion
	good := encodeSeeds(f, storeFileName, &plain, &rollback)
	fuzzDescriptor(f, descriptorCodec[storeFile]{
		name:   storeFileName,
		decode: decodeStoreFile,
		encode: encodeStoreFile,
		sum:    func(sf storeFile) string { return sf.Checksum },
	}, good...)
}

func FuzzDecodeRestoreMarker(f *testing.F) {
	m := sampleRestoreMarker()
	fresh := restoreMarker{Version: 1, Staging: []string{"data-000001"}}
	m.FormatVersion, fresh.FormatVersion = storeFormatVersion, storeFormatVersion
	good := encodeSeeds(f, restoringFileName, &m, &fresh)
	fuzzDescriptor(f, descriptorCodec[restoreMarker]{
		name:   restoringFileName,
		decode: decodeRestoreMarker,
		encode: func(m restoreMarker) ([]byte, error) { return encodeDescriptor(restoringFileName, &m) },
		sum:    func(m restoreMarker) string { return m.Checksum },
	}, good...)
}

// remoteCodec is the codec of a remote descriptor stored under key.
func remoteCodec[T any, P interface {
	*T
	descriptor
}](key string, decode func(string, []byte) (P, error)) descriptorCodec[P] {
	return descriptorCodec[P]{
		name:   key,
		decode: func(b []byte) (P, error) { return decode(key, b) },
		encode: func(d P) ([]byte, error) { c := *d; return encodeDescriptor(key, P(&c)) },
		sum:    func(d P) string { return *d.checksum() },
	}
}

func FuzzDecodeLease(f *testing.F) {
	const key = leasePrefix + "00112233aabbccdd-w1"
	l := sampleLease()
	empty := sampleLease()
	empty.Runs = nil
	l.FormatVersion, empty.FormatVersion = storeFormatVersion, storeFormatVersion
	good := encodeSeeds(f, key, &l, &empty)
	fuzzDescriptor(f, remoteCodec(key, decodeLease), good...)
}

func FuzzDecodeSweep(f *testing.F) {
	key := sweepKey(sampleTime)
	running, done := sampleSweep(false), sampleSweep(true)
	running.FormatVersion, done.FormatVersion = storeFormatVersion, storeFormatVersion
	good := encodeSeeds(f, key, &running, &done)
	fuzzDescriptor(f, remoteCodec(key, decodeSweep), good...)
}
