package engines

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRunNameRoundTrip(t *testing.T) {
	n := NewRunNamer(41)
	a, b := n.Next("sst"), n.Next("hint")
	for i, name := range []string{a, b} {
		seq, nonce, ext, ok := ParseRunName(name)
		if !ok || seq != uint64(41+i) || len(nonce) != 8 || ext != []string{"sst", "hint"}[i] {
			t.Fatalf("ParseRunName(%q) = %d %q %q %v", name, seq, nonce, ext, ok)
		}
	}
	if n2 := NewRunNamer(41); n2.Next("sst") == a {
		t.Fatalf("two namers from the same seq produced the same name %q", a)
	}
	n.Observe(100)
	if seq, _, _, _ := ParseRunName(n.Next("sst")); seq != 101 {
		t.Fatalf("Observe(100) then Next gave seq %d", seq)
	}
	for _, bad := range []string{"", "CURRENT", "active.log", "0000000000000001-abcdefgh.sst",
		"0000000000000001-abcdef01.", "0000000000000001-abcdef01.s/t", "000000000000000G-abcdef01.sst",
		"0000000000000001-abcdef01.sst" + TempSuffix[1:] + "/x", "../000000000000001-abcdef01.sst"} {
		if _, _, _, ok := ParseRunName(bad); ok {
			t.Errorf("ParseRunName(%q) accepted", bad)
		}
	}
}

func TestWriteRunAndCheck(t *testing.T) {
	dir := t.TempDir()
	fs := OSFS{}
	info, err := WriteRun(fs, dir, "0000000000000001-abcdef01.sst", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	size, crc, err := FileCRC32C(fs, filepath.Join(dir, info.Name))
	if err != nil || size != 5 || crc != info.CRC32C {
		t.Fatalf("FileCRC32C = %d %x %v, RunInfo %+v", size, crc, err, info)
	}
	if _, err := os.Stat(filepath.Join(dir, info.Name+TempSuffix)); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind")
	}
	cp := &Checkpoint{Runs: []RunInfo{info}}
	if err := CheckRunsPresent(fs, dir, cp); err != nil {
		t.Fatal(err)
	}
	cp.Runs = append(cp.Runs, RunInfo{Name: "0000000000000002-abcdef01.sst", Size: 1})
	if err := CheckRunsPresent(fs, dir, cp); err == nil {
		t.Fatal("missing run not reported")
	}
	if err := WriteFileAtomic(fs, dir, "CURRENT", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "64K": 64 << 10, "16M": 16 << 20, "1G": 1 << 30, "16MiB": 16 << 20, "2kb": 2048} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "K", "-1", "1T", "abc"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	pp := NewParamParser("lsm", Params{"density_factor": "0", "bogus": "1"})
	pp.Int("density_factor", 16, 1, 100)
	if err := pp.Err(); err == nil {
		t.Fatal("out-of-range parameter accepted")
	}
	pp = NewParamParser("lsm", Params{"bogus": "1"})
	pp.Int("density_factor", 16, 1, 100)
	if err := pp.Err(); err == nil {
		t.Fatal("unknown parameter accepted")
	}
}
