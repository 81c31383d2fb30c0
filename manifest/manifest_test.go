package manifest

import (
	"bytes"
	"errors"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// sample returns a manifest that uses every member.
func sample() *Manifest {
	return &Manifest{
		FormatVersion: FormatVersion,
		StoreID:       "orders-7",
		Version:       12,
		Parent:        11,
		WriterID:      "worker-3/pid-4242",
		CommitID:      "0123456789abcdef0123456789abcdef",
		Created:       time.Date(2025, 11, 27, 12, 30, 45, 123456789, time.UTC),
		Engine:        "lsm",
		Params:        map[string]string{"max_runs_per_level": "4", "density_factor": "16", "memtable_bytes_limit": "4M"},
		EngineState:   []byte{0x01, 0x02, 0xfe, 0xff, '<', '&'},
		Runs: []engines.RunInfo{
			{Name: "0000000000000001-a1b2c3d4.sst", Size: 4096, CRC32C: 0xdeadbeef},
			{Name: "0000000000000002-a1b2c3d4.sst", Size: 123, CRC32C: 7},
			{Name: "0000000000000003-a1b2c3d4.hint", Size: 0, CRC32C: 0},
		},
		Metadata: map[string]string{"kafka.offset": "1234", "note": "a <b> & \"c\"\n\u2028é"},
		Stats:    Stats{NewRuns: 1, NewBytes: 123, TotalRuns: 3, TotalBytes: 4219},
	}
}

// encodeUnchecked encodes m with a correct checksum but without validating,
// so that tests can build manifests that only Validate refuses.
func encodeUnchecked(t testing.TB, m *Manifest) []byte {
	t.Helper()
	m.Checksum = ""
	body, err := canonical(m)
	if err != nil {
		t.Fatal(err)
	}
	m.Checksum = formatCRC(crc32.Checksum(body, engines.CastagnoliTable))
	out, err := canonical(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for name, m := range map[string]*Manifest{
		"full":    sample(),
		"minimal": {Version: 1, Engine: "memonly"},
		"empty collections": {Version: 3, Parent: 1, Engine: "appendlog",
			Params: map[string]string{}, EngineState: []byte{}, Runs: []engines.RunInfo{}, Metadata: map[string]string{}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if m.FormatVersion != FormatVersion || len(m.Checksum) != 8 {
				t.Fatalf("Encode did not fill in format version and checksum: %d %q", m.FormatVersion, m.Checksum)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip differs:\n got %#v\nwant %#v", got, m)
			}
			again, err := Encode(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n%s\n%s", again, b)
			}
		})
	}
}

func TestEncodeFillsTotals(t *testing.T) {
	m := sample()
	m.Stats.TotalRuns, m.Stats.TotalBytes = 0, 0
	if _, err := Encode(m); err != nil {
		t.Fatal(err)
	}
	if m.Stats.TotalRuns != 3 || m.Stats.TotalBytes != 4219 {
		t.Fatalf("totals not filled in: %+v", m.Stats)
	}
}

// TestGolden: testdata/v1.json was written before the rules for evolving
// the format (doc.go) and is never regenerated (-update leaves it alone): it
// must keep decoding. While the encoding is unchanged, Encode reproduces it;
// a change of the encoding pins its new output in a new golden file.
func TestGolden(t *testing.T) {
	b, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("the encoding no longer reproduces v1.json; if intended, pin the new encoding in a new golden and keep v1.json\n got:\n%s\nwant:\n%s", b, want)
	}
	decodesToSample(t, "v1.json", want)

	// The checksum is reproducible by hand, as doc.go describes: blank the
	// eight digits and take the CRC-32C of the bytes.
	re := regexp.MustCompile(`"checksum": "([0-9a-f]{8})"`)
	sub := re.FindSubmatch(want)
	if sub == nil {
		t.Fatal("golden has no checksum member")
	}
	blanked := re.ReplaceAll(want, []byte(`"checksum": ""`))
	if got := formatCRC(crc32.Checksum(blanked, engines.CastagnoliTable)); got != string(sub[1]) {
		t.Fatalf("CRC-32C of the blanked body is %s, checksum member says %s", got, sub[1])
	}
}

// checkGolden compares b with testdata/name (writing it first with -update)
// and returns the file's bytes.
func checkGolden(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("%s changed; if intended, run -update\n got:\n%s\nwant:\n%s", path, b, want)
	}
	return want
}

// TestGoldenEvolution pins the rules for changing the format (doc.go):
// optional members added by a newer writer are ignored and covered by the
// checksum; a newer format number is refused as such.
func TestGoldenEvolution(t *testing.T) {
	v1, err := os.ReadFile(filepath.Join("testdata", "v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(b []byte, old, new string) []byte {
		t.Helper()
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("v1.json lacks %q", old)
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}

	// A format 1 manifest from a writer that added optional members at the
	// top level, in a run and in stats.
	opt := edit(v1, `"crc32c": 3735928559
    }`, `"crc32c": 3735928559,
      "tier": "cold"
    }`)
	opt = edit(opt, `"total_bytes": 4219
  },`, `"total_bytes": 4219,
    "cold_bytes": 4096
  },
  "tiering": {
    "cold_after": "24h",
    "runs_in_cold": [
      "0000000000000001-a1b2c3d4.sst"
    ]
  },`)
	opt = checkGolden(t, "v1-optional.json", reseal(t, opt))
	m := decodesToSample(t, "v1-optional.json (format 1 with optional members)", opt)
	if m.Checksum == checksumOf(v1) {
		t.Fatal("the optional members did not change the checksum")
	}
	// The checksum covers the members this build does not know.
	for _, old := range []string{`"cold"`, `"24h"`, `4096
  }`} {
		bad := bytes.Replace(opt, []byte(old), []byte(strings.Replace(old, "4", "5", 1)+" "), 1)
		if _, err := Decode(bad); !errors.Is(err, engines.ErrCorrupt) || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Errorf("change inside an unknown member (%s) not caught: %v", old, err)
		}
	}

	// A manifest of a newer format (a required feature) is refused clearly,
	// whatever it holds.
	newer := edit(v1, `"format_version": 1`, `"format_version": 2`)
	newer = edit(newer, `"runs": [`, `"run_prefixes": [
    "runs/",
    "cold/runs/"
  ],
  "runs": [`)
	newer = checkGolden(t, "v2-newer.json", reseal(t, newer))
	_, err = Decode(newer)
	if !errors.Is(err, ErrFormat) || errors.Is(err, engines.ErrCorrupt) ||
		!strings.Contains(err.Error(), "written by a newer tierkv") || !strings.Contains(err.Error(), "format version 2") {
		t.Fatalf("format 2 manifest: %v, want ErrFormat saying it was written by a newer tierkv", err)
	}
}

// decodesToSample decodes b, which must hold sample() whatever else it
// holds, and returns the manifest.
func decodesToSample(t *testing.T, what string, b []byte) *Manifest {
	t.Helper()
	m, err := Decode(b)
	if err != nil {
		t.Fatalf("%s refused: %v", what, err)
	}
	want := sample()
	want.Checksum = m.Checksum
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("%s decodes to\n%#v\nwant\n%#v", what, m, want)
	}
	return m
}

// reseal returns b with its checksum member recomputed by the rule of
// doc.go: the CRC-32C of the bytes with the member's value left empty.
func reseal(t testing.TB, b []byte) []byte {
	t.Helper()
	at, end, err := checksumSpan(b)
	if err != nil {
		t.Fatalf("reseal: %v", err)
	}
	blank := append(bytes.Clone(b[:at]), b[end:]...)
	sum := formatCRC(crc32.Checksum(blank, engines.CastagnoliTable))
	return append(append(bytes.Clone(b[:at]), sum...), b[end:]...)
}

// TestChecksumCoversBytesAsWritten: the checksum covers the stored bytes,
// whitespace included, not a re-encoding of what they decode to.
func TestChecksumCoversBytesAsWritten(t *testing.T) {
	b, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reseal(t, b), b) {
		t.Fatal("Encode's checksum differs from the raw-bytes rule")
	}
	var compact bytes.Buffer
	if err := compactJSON(&compact, b); err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(compact.Bytes()); !errors.Is(err, engines.ErrCorrupt) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("compacted manifest with the old checksum: %v, want a checksum mismatch", err)
	}
	decodesToSample(t, "the compacted manifest with its own checksum", reseal(t, compact.Bytes()))
}

func TestDecodeRefusals(t *testing.T) {
	good, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	// mutate builds a manifest that is well formed and correctly checksummed
	// but breaks a content rule.
	mutate := func(f func(m *Manifest)) []byte {
		m := sample()
		f(m)
		return encodeUnchecked(t, m)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("golden lacks %q", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	runName := func(name string) []byte {
		return mutate(func(m *Manifest) { m.Runs[1].Name = name })
	}

	cases := []struct {
		name    string
		in      []byte
		is      error // ErrFormat, or engines.ErrCorrupt (+ ErrInvalid when invalid is set)
		invalid bool
		want    string // substring of the message
	}{
		{"empty", nil, engines.ErrCorrupt, false, "invalid JSON"},
		{"not json", []byte("hello"), engines.ErrCorrupt, false, "invalid JSON"},
		{"truncated", good[:len(good)/2], engines.ErrCorrupt, false, "invalid JSON"},
		{"array", []byte(`[1,2]`), engines.ErrCorrupt, false, "invalid JSON"},
		{"no format version", []byte(`{"version": 1}`), engines.ErrCorrupt, false, "no format_version"},
		{"format version not a number", replace(`"format_version": 1`, `"format_version": "x"`), engines.ErrCorrupt, false, "invalid JSON"},
		{"format version fraction", replace(`"format_version": 1`, `"format_version": 1.5`), engines.ErrCorrupt, false, "not an integer"},
		{"format version 2", replace(`"format_version": 1`, `"format_version": 2, "future": true`), ErrFormat, false, "unsupported format version 2 in manifest: written by a newer tierkv"},
		{"format version 0", replace(`"format_version": 1`, `"format_version": 0`), ErrFormat, false, "unsupported format version 0"},
		{"unknown member, old checksum", replace(`"store_id"`, `"surprise": 1, "store_id"`), engines.ErrCorrupt, false, "checksum mismatch"},
		{"wrong type", reseal(t, replace(`"version": 12`, `"version": "12"`)), engines.ErrCorrupt, false, "invalid JSON"},
		{"negative version", reseal(t, replace(`"version": 12`, `"version": -12`)), engines.ErrCorrupt, false, "invalid JSON"},
		{"wrong type, old checksum", replace(`"version": 12`, `"version": "12"`), engines.ErrCorrupt, false, "checksum mismatch"},
		{"checksum twice", replace(`"store_id"`, `"checksum": "00000000", "store_id"`), engines.ErrCorrupt, false, "two checksum members"},
		{"checksum not a string", replace(`"checksum": "`+checksumOf(good)+`"`, `"checksum": 5`), engines.ErrCorrupt, false, "is not a string"},
		{"no checksum member", replace(`,
  "checksum": "`+checksumOf(good)+`"`, ``), engines.ErrCorrupt, false, "no checksum member"},
		{"checksum escaped", replace(`"checksum": "`, `"checksum": "\u0030`), engines.ErrCorrupt, false, "not 8 lowercase hex digits"},
		{"trailing data", append(bytes.Clone(good), `{}`...), engines.ErrCorrupt, false, "after top-level value"},
		{"checksum mismatch", replace(`"store_id": "orders-7"`, `"store_id": "orders-8"`), engines.ErrCorrupt, false, "checksum mismatch"},
		{"checksum flipped", replace(`"size": 4096`, `"size": 4097`), engines.ErrCorrupt, false, "checksum mismatch"},
		{"checksum malformed", mutateChecksum(good, "XYZ"), engines.ErrCorrupt, false, "not 8 lowercase hex digits"},
		{"checksum uppercase", mutateChecksum(good, strings.ToUpper(checksumOf(good))+""), engines.ErrCorrupt, false, ""},
		{"checksum missing", mutateChecksum(good, ""), engines.ErrCorrupt, false, "not 8 lowercase hex digits"},
		{"run name empty", runName(""), engines.ErrCorrupt, true, "empty run name"},
		{"run name slash", runName("a/b"), engines.ErrCorrupt, true, "path separator"},
		{"run name backslash", runName(`a\b`), engines.ErrCorrupt, true, "path separator"},
		{"run name NUL", runName("a\x00b"), engines.ErrCorrupt, true, "NUL"},
		{"run name dotdot", runName(".."), engines.ErrCorrupt, true, `".."`},
		{"run name inner dotdot", runName("a..b"), engines.ErrCorrupt, true, `".."`},
		{"run name absolute", runName("/etc/passwd"), engines.ErrCorrupt, true, "path separator"},
		{"run name drive", runName("C:x.sst"), engines.ErrCorrupt, true, "not a plain file name"},
		{"run name dot", runName("."), engines.ErrCorrupt, true, "not a plain file name"},
		{"run name hidden", runName(".x"), engines.ErrCorrupt, true, "not a plain file name"},
		{"run name dash", runName("-x"), engines.ErrCorrupt, true, "not a plain file name"},
		{"run name space", runName("a b"), engines.ErrCorrupt, true, "not a plain file name"},
		{"run name newline", runName("a\nb"), engines.ErrCorrupt, true, "not a plain file name"},
		{"run name long", runName(strings.Repeat("a", 256)), engines.ErrCorrupt, true, "longer than 255"},
		{"duplicate run", mutate(func(m *Manifest) { m.Runs[2].Name = m.Runs[0].Name }), engines.ErrCorrupt, true, "duplicates run 0"},
		{"negative size", mutate(func(m *Manifest) { m.Runs[1].Size = -1; m.Stats.TotalBytes = 4095 }), engines.ErrCorrupt, true, "negative size"},
		{"version 0", mutate(func(m *Manifest) { m.Version, m.Parent = 0, 0 }), engines.ErrCorrupt, true, "version 0"},
		{"parent equals version", mutate(func(m *Manifest) { m.Parent = m.Version }), engines.ErrCorrupt, true, "parent 12 is not below version 12"},
		{"parent above version", mutate(func(m *Manifest) { m.Parent = 99 }), engines.ErrCorrupt, true, "parent 99"},
		{"empty engine", mutate(func(m *Manifest) { m.Engine = "" }), engines.ErrCorrupt, true, "engine kind is empty"},
		{"engine not a name", mutate(func(m *Manifest) { m.Engine = "LSM tree" }), engines.ErrCorrupt, true, "not a lowercase name"},
		{"total runs", mutate(func(m *Manifest) { m.Stats.TotalRuns = 2 }), engines.ErrCorrupt, true, "total_runs"},
		{"total bytes", mutate(func(m *Manifest) { m.Stats.TotalBytes = 1 }), engines.ErrCorrupt, true, "total_bytes"},
		{"negative stats", mutate(func(m *Manifest) { m.Stats.NewBytes = -1 }), engines.ErrCorrupt, true, "negative stats"},
		{"new above total", mutate(func(m *Manifest) { m.Stats.NewRuns = 4 }), engines.ErrCorrupt, true, "exceeds total_runs"},
		{"metadata empty key", mutate(func(m *Manifest) { m.Metadata[""] = "x" }), engines.ErrCorrupt, true, "empty key"},
		{"too large", make([]byte, MaxSize+1), engines.ErrCorrupt, false, "more than the limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode(c.in)
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", m)
			}
			if !errors.Is(err, c.is) {
				t.Fatalf("error %q does not match %v", err, c.is)
			}
			if c.is == engines.ErrCorrupt {
				var ce *engines.CorruptionError
				if !errors.As(err, &ce) || ce.File != "manifest" {
					t.Errorf("error %q is not an *engines.CorruptionError naming the object", err)
				}
			} else if errors.Is(err, engines.ErrCorrupt) {
				t.Errorf("format error %q also matches engines.ErrCorrupt", err)
			}
			if got := errors.Is(err, ErrInvalid); got != c.invalid {
				t.Errorf("errors.Is(%q, ErrInvalid) = %v, want %v", err, got, c.invalid)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func checksumOf(b []byte) string {
	return string(regexp.MustCompile(`"checksum": "([^"]*)"`).FindSubmatch(b)[1])
}

func mutateChecksum(b []byte, to string) []byte {
	return regexp.MustCompile(`"checksum": "[^"]*"`).ReplaceAll(bytes.Clone(b), []byte(`"checksum": "`+to+`"`))
}

func TestEncodeRefusesInvalid(t *testing.T) {
	m := sample()
	m.Runs[0].Name = "../../etc/passwd"
	_, err := Encode(m)
	if !errors.Is(err, ErrInvalid) || errors.Is(err, engines.ErrCorrupt) {
		t.Fatalf("Encode error %v: want ErrInvalid and not engines.ErrCorrupt", err)
	}
	m = sample()
	m.FormatVersion = 2
	if _, err := Encode(m); !errors.Is(err, ErrFormat) {
		t.Fatalf("Encode of format 2: %v, want ErrFormat", err)
	}
	m = sample()
	m.Metadata["bad"] = "\xff"
	if _, err := Encode(m); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Encode of invalid UTF-8: %v, want ErrInvalid", err)
	}
}

func TestCheckRunNameAcceptsRunNamer(t *testing.T) {
	n := engines.NewRunNamer(1 << 40)
	for _, ext := range []string{"sst", "log", "hint", "run0"} {
		if name := n.Next(ext); CheckRunName(name) != nil {
			t.Errorf("RunNamer name %q refused: %v", name, CheckRunName(name))
		}
	}
	for _, ok := range []string{"a", "A.b-c_d", "x.y.z", "0"} {
		if err := CheckRunName(ok); err != nil {
			t.Errorf("CheckRunName(%q) = %v", ok, err)
		}
	}
}

func TestKeys(t *testing.T) {
	for _, v := range []uint64{1, 7, 12, 1e10, 1<<64 - 1} {
		k := Key(v)
		if len(k) != len("manifests/")+20 {
			t.Errorf("Key(%d) = %q: not 20 digits", v, k)
		}
		got, ok := ParseKey(k)
		if !ok || got != v {
			t.Errorf("ParseKey(Key(%d) = %q) = %d, %v", v, k, got, ok)
		}
	}
	if k := Key(12); k != "manifests/00000000000000000012" {
		t.Errorf("Key(12) = %q", k)
	}
	if Key(9) >= Key(10) || Key(99) >= Key(100) {
		t.Error("keys do not sort numerically")
	}
	for _, bad := range []string{
		"", "manifests/", "manifests/12", "manifests/00000000000000000000",
		"manifests/0000000000000000001a", "manifests/00000000000000000012.tmp",
		"runs/00000000000000000012", "manifests/+0000000000000000012",
		"manifests/99999999999999999999", "x/manifests/00000000000000000012",
	} {
		if v, ok := ParseKey(bad); ok {
			t.Errorf("ParseKey(%q) = %d, true", bad, v)
		}
	}
	if RunKey("0000000000000001-a1b2c3d4.sst") != "runs/0000000000000001-a1b2c3d4.sst" {
		t.Error("RunKey")
	}
}
