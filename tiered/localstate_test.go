package tiered

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

func sampleStoreFile() storeFile {
	return storeFile{
		StoreID: "00112233aabbccdd", Engine: "lsm",
		Params:  map[string]string{"max_runs_per_level": "4"},
		Version: 12, Data: "data-000003", WriterID: "host/1/abcd",
		Metadata: map[string]string{"offset": "99"},
	}
}

func TestStoreFileRoundTrip(t *testing.T) {
	b, err := encodeStoreFile(sampleStoreFile())
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeStoreFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 12 || f.Data != "data-000003" || f.Metadata["offset"] != "99" || f.Params["max_runs_per_level"] != "4" {
		t.Fatalf("round trip: %+v", f)
	}
	// Every single-byte change inside the JSON values is detected.
	for _, c := range []struct{ from, to string }{
		{`"version": 12`, `"version": 13`},
		{`data-000003`, `data-000004`},
		{`"99"`, `"98"`},
		{`"format_version": 1`, `"format_version": 2`},
		{`"lsm"`, `"lsx"`},
	} {
		bad := bytes.Replace(b, []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(bad, b) {
			t.Fatalf("sample lacks %q", c.from)
		}
		if _, err := decodeStoreFile(bad); !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("%s -> %s: %v, want corruption", c.from, c.to, err)
		}
	}
	if _, err := decodeStoreFile(b[:len(b)/2]); !errors.Is(err, engines.ErrCorrupt) {
		t.Fatalf("truncated STORE: %v", err)
	}
	bad := sampleStoreFile()
	bad.Data = "../escape"
	if _, err := encodeStoreFile(bad); err == nil {
		t.Fatal("encoded a STORE naming ../escape")
	}
}

func TestGenNames(t *testing.T) {
	for _, n := range []uint64{1, 2, 999999, 1000000, 1 << 40} {
		got, ok := parseGen(genName(n))
		if !ok || got != n {
			t.Fatalf("parseGen(genName(%d)) = %d, %v", n, got, ok)
		}
	}
	for _, s := range []string{"", "data-", "data-00001", "data-000000", "data-00000a", "data-000001/..", "xdata-000001", "data--00001"} {
		if _, ok := parseGen(s); ok {
			t.Fatalf("parseGen(%q) accepted", s)
		}
	}
}
