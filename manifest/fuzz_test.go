package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

func FuzzDecode(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "v1.json"))
	if err != nil {
		f.Fatal(err)
	}
	minimal, err := Encode(&Manifest{Version: 1, Engine: "memonly"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(minimal)
	f.Add(golden[:len(golden)/3])
	f.Add(bytes.Replace(golden, []byte(`"format_version": 1`), []byte(`"format_version": 2`), 1))
	f.Add([]byte(`{"format_version": 1}`))
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
		// Whatever decodes re-encodes to bytes that decode to the same value.
		sum := m.Checksum
		out, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		if m.Checksum != sum {
			t.Fatalf("re-encoding changed the checksum: %s -> %s", sum, m.Checksum)
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
