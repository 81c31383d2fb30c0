package manifest

import (
	"bytes"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"v1.json", "v1-optional.json", "v2-newer.json"} {
		golden, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(golden)
		f.Add(golden[:len(golden)/3])
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "v1.json"))
	if err != nil {
		f.Fatal(err)
	}
	minimal, err := Encode(&Manifest{Version: 1, Engine: "memonly"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(minimal)
	f.Add(bytes.Replace(golden, []byte(`"format_version": 1`), []byte(`"format_version": 2`), 1))
	f.Add([]byte(`{"format_version": 1}`))
	f.Add([]byte(`{"format_version": 1, "checksum": "00000000", "checksum": ""}`))
	f.Add([]byte(`{"format_version": 1, "version": 1, "engine": "lsm", "runs": [{"name": "../x"}], "checksum": "00000000"}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if m != nil {
				t.Fatal("Decode returned a manifest with an error")
			}
			if !errors.Is(err, engines.ErrCorrupt) && !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is neither engines.ErrCorrupt nor ErrFormat", err)
			}
			return
		}
		for _, r := range m.Runs {
			if CheckRunName(r.Name) != nil || r.Size < 0 {
				t.Fatalf("accepted bad run %+v", r)
			}
		}
		// The checksum holds for the bytes as given, by the rule of doc.go.
		at, end, err := checksumSpan(b)
		if err != nil || string(b[at:end]) != m.Checksum {
			t.Fatalf("accepted bytes whose checksum member is not found (%v) or is not %q", err, m.Checksum)
		}
		blank := append(bytes.Clone(b[:at]), b[end:]...)
		if got := formatCRC(crc32.Checksum(blank, engines.CastagnoliTable)); got != m.Checksum {
			t.Fatalf("accepted checksum %s, the bytes hash to %s", m.Checksum, got)
		}
		// Whatever decodes re-encodes to bytes that decode to the same value
		// (members this build does not know are dropped).
		out, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip differs:\n%#v\n%#v", again, m)
		}
	})
}
