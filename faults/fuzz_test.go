package faults

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/all"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
)

// template is a small real store (one version per engine) whose run objects
// the planted-manifest fuzz target copies into a fresh bucket per input.
var template struct {
	once      sync.Once
	err       error
	objects   map[string][]byte // run key -> content
	manifests [][]byte          // the encoded manifests, one per engine
}

func loadTemplate() error {
	template.once.Do(func() {
		ctx := context.Background()
		template.objects = map[string][]byte{}
		root, err := os.MkdirTemp("", "tierkv-fuzz-template-")
		if err != nil {
			template.err = err
			return
		}
		defer os.RemoveAll(root)
		for _, kind := range all.Kinds() {
			mem := objstore.NewMem()
			s, err := tiered.Open(ctx, tiered.Options{Dir: filepath.Join(root, kind), ObjectStore: mem, Engine: kind, Params: tinyParams(kind), Logger: discardLogger()})
			if err != nil {
				template.err = err
				return
			}
			for j := range 60 {
				_ = s.Set([]byte(fmt.Sprintf("k%03d", j)), []byte(strings.Repeat(kind, j%7)))
			}
			_ = s.Delete([]byte("k001"))
			res, err := s.Snapshot(ctx)
			_ = s.Close()
			if err != nil {
				template.err = err
				return
			}
			if res.Version != 1 {
				template.err = fmt.Errorf("template version %d, want 1", res.Version)
				return
			}
			if template.err = copyObjects(ctx, mem); template.err != nil {
				return
			}
		}
	})
	return template.err
}

// copyObjects adds the objects of mem to the template.
func copyObjects(ctx context.Context, mem objstore.Store) error {
	objs, err := mem.List(ctx, "")
	if err != nil {
		return err
	}
	for _, o := range objs {
		rc, _, err := mem.Get(ctx, o.Key)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if strings.HasPrefix(o.Key, manifest.ManifestPrefix) {
			template.manifests = append(template.manifests, b)
		} else {
			template.objects[o.Key] = b
		}
	}
	return nil
}

// FuzzPlantedManifest plants arbitrary bytes as manifest version 1 in a
// bucket holding real runs, then runs every reader of manifests on it:
// Verify (deep), PlanRestore, RestoreTo, GC and Open of the restored
// directory. Nothing may panic, every accepted manifest names only plain
// run names, nothing is written outside the restore directory, and a
// refusal of the manifest is a corruption or format error.
func FuzzPlantedManifest(f *testing.F) {
	if err := loadTemplate(); err != nil {
		f.Fatal(err)
	}
	for _, m := range template.manifests {
		f.Add(m)
		f.Add(m[:len(m)/2])
		good, err := manifest.Decode(m)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range []string{"../evil", "../../evil", "/evil", `..\evil`, "a/b"} {
			h := *good
			h.Runs = append([]engines.RunInfo{{Name: name, Size: 1}}, good.Runs...)
			f.Add(encodeUnchecked(f, h))
		}
		h := *good
		h.EngineState = []byte("not an engine state")
		f.Add(encodeUnchecked(f, h))
		h = *good
		if len(h.Runs) > 0 {
			h.Runs = append([]engines.RunInfo(nil), good.Runs...)
			h.Runs[0].Size++
			f.Add(encodeUnchecked(f, h))
		}
	}
	f.Add([]byte(`{"format_version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		mem := objstore.NewMem()
		for k, v := range template.objects {
			if err := mem.Put(ctx, k, strings.NewReader(string(v)), int64(len(v)), objstore.PutOptions{
				Metadata: map[string]string{"crc32c": crcHex(v)},
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := mem.Put(ctx, manifest.Key(1), strings.NewReader(string(b)), int64(len(b)), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		m, lerr := manifest.Load(ctx, mem, 1)
		if lerr != nil {
			if !errors.Is(lerr, engines.ErrCorrupt) && !errors.Is(lerr, manifest.ErrFormat) {
				t.Fatalf("Load: %v is neither corruption nor a format error", lerr)
			}
		} else {
			for _, r := range m.Runs {
				if manifest.CheckRunName(r.Name) != nil || !filepath.IsLocal(r.Name) {
					t.Fatalf("accepted run name %q", r.Name)
				}
			}
		}
		problems, err := tiered.Verify(ctx, mem, nil, true)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if lerr != nil && len(problems) == 0 {
			t.Fatalf("Verify found no problem in a manifest Load refuses (%v)", lerr)
		}
		root := t.TempDir()
		dir := filepath.Join(root, "restore")
		_, perr := tiered.PlanRestore(ctx, dir, mem, 1)
		_, rerr := tiered.RestoreTo(ctx, dir, mem, 1, nil)
		if lerr != nil && (perr == nil || rerr == nil) {
			t.Fatalf("PlanRestore (%v) or RestoreTo (%v) accepted a manifest Load refuses (%v)", perr, rerr, lerr)
		}
		if rerr == nil {
			s, err := tiered.Open(ctx, tiered.Options{Dir: dir, ResumeLocal: true, Logger: discardLogger()})
			if err == nil {
				_, _, _ = s.Get([]byte("k002"))
				_ = s.Close()
			}
		}
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 1 || len(entries) == 1 && entries[0].Name() != "restore" {
			t.Fatalf("restore wrote beside its directory: %v", entries)
		}
		gcRes, gerr := tiered.GC(ctx, mem, 0, false)
		if lerr != nil && gerr == nil {
			t.Fatalf("GC deleted %v with an unreadable manifest", gcRes.Deleted)
		}
		if lerr == nil && gerr == nil {
			// Only runs the manifest does not name may go.
			named := map[string]bool{}
			for _, r := range m.Runs {
				named[manifest.RunKey(r.Name)] = true
			}
			for _, k := range gcRes.Deleted {
				if named[k] {
					t.Fatalf("GC deleted %s, which the manifest names", k)
				}
			}
		}
	})
}

func crcHex(b []byte) string {
	return fmt.Sprintf("%08x", crc32.Checksum(b, engines.CastagnoliTable))
}

// FuzzCheckRunName: every name CheckRunName accepts is a plain local file
// name that stays in its directory and is a valid object key under runs/.
func FuzzCheckRunName(f *testing.F) {
	namer := engines.NewRunNamer(1)
	for _, s := range []string{namer.Next("sst"), namer.Next("hint"), "a", "a.b", "..", "../x", "a/b", `a\b`, "/abs", "C:x", "a..b", "a.", "-a", "x\x00", strings.Repeat("a", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if manifest.CheckRunName(name) != nil {
			return
		}
		if !filepath.IsLocal(name) || filepath.Base(name) != name || strings.ContainsAny(name, `/\:`) || strings.Contains(name, "..") {
			t.Fatalf("CheckRunName accepted %q", name)
		}
		if err := objstore.ValidateKey(manifest.RunKey(name)); err != nil {
			t.Fatalf("accepted run name %q is not a valid key: %v", name, err)
		}
		dir := filepath.FromSlash("/store/data-000001")
		if p := filepath.Join(dir, name); filepath.Dir(p) != dir {
			t.Fatalf("run %q resolves to %s, outside %s", name, p, dir)
		}
	})
}

// FuzzManifestKey: ParseKey accepts exactly the keys Key produces.
func FuzzManifestKey(f *testing.F) {
	for _, s := range []string{manifest.Key(1), manifest.Key(1<<64 - 1), "manifests/00000000000000000000", "manifests/1", "manifests/+0000000000000000001", "runs/x", "manifests/0000000000000000001a"} {
		f.Add(s, uint64(7))
	}
	f.Fuzz(func(t *testing.T, key string, v uint64) {
		if got, ok := manifest.ParseKey(key); ok && (got == 0 || manifest.Key(got) != key) {
			t.Fatalf("ParseKey(%q) = %d, and Key(%d) = %q", key, got, got, manifest.Key(got))
		}
		if v == 0 {
			return
		}
		if got, ok := manifest.ParseKey(manifest.Key(v)); !ok || got != v {
			t.Fatalf("ParseKey(Key(%d)) = %d, %v", v, got, ok)
		}
	})
}

// FuzzParseRunName: a name ParseRunName accepts is a valid manifest run
// name and is exactly what RunNamer would print for its parts.
func FuzzParseRunName(f *testing.F) {
	namer := engines.NewRunNamer(42)
	for _, s := range []string{namer.Next("sst"), namer.Next("log"), "000000000000002a-0badcafe.", "000000000000002A-0badcafe.sst", "x", "000000000000002a-0badcafe.s/t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		seq, nonce, ext, ok := engines.ParseRunName(name)
		if !ok {
			return
		}
		if err := manifest.CheckRunName(name); err != nil {
			t.Fatalf("ParseRunName accepted %q, which manifests refuse: %v", name, err)
		}
		if again := fmt.Sprintf("%016x-%s.%s", seq, nonce, ext); again != name {
			t.Fatalf("ParseRunName(%q) = %d %q %q, which prints as %q", name, seq, nonce, ext, again)
		}
	})
}

// FuzzRedact: Redact never lets a password or a secret-looking query value
// through, wherever it sits in a remote URL.
func FuzzRedact(f *testing.F) {
	f.Add("127.0.0.1:9000", "hunter2hunter2")
	f.Add("bucket", "s3cr3t/with+chars")
	f.Add("h", "%zz%zz%zz")
	f.Fuzz(func(t *testing.T, host, secret string) {
		// A marker makes the secret impossible to assemble by accident from
		// the host and the escaping.
		secret = "SeCrEt" + secret
		if strings.Contains(strings.ToLower(host), "secret") || strings.ContainsAny(secret, "@/?#&=%") {
			return
		}
		for _, u := range []string{
			"minio://AKIA:" + secret + "@" + host + "/bucket/p?secure=false",
			"minio://" + secret + "@" + host + "/bucket",
			"s3://bucket/p?endpoint=http://u:" + secret + "@" + host,
			"s3://bucket/p?secret_key=" + secret,
			"s3://bucket/p?region=x&aws_secret_access_key=" + secret,
			"s3://bucket/p?X-Amz-Security-Token=" + secret,
			"file:///x?token=" + secret,
		} {
			if out := objstore.Redact(u); strings.Contains(out, secret) {
				t.Fatalf("Redact(%q) = %q keeps the secret", u, out)
			}
			if _, err := objstore.Open(context.Background(), u); err != nil && strings.Contains(err.Error(), secret) {
				t.Fatalf("Open(%q) error keeps the secret: %v", u, err)
			}
		}
	})
}

// FuzzEngineParams: parameters from a manifest or the command line never
// panic the parsers, and canonical parameters are a fixed point.
func FuzzEngineParams(f *testing.F) {
	for _, kind := range all.Kinds() {
		for name, value := range all.DefaultParams(kind) {
			f.Add(kind, name, value)
			f.Add(kind, name, "-1")
			f.Add(kind, name, "99999999999999999999G")
		}
	}
	f.Add("lsm", "memtable_bytes_limit", "64KiB")
	f.Add("nope", "x", "y")
	f.Fuzz(func(t *testing.T, kind, name, value string) {
		_, _ = engines.ParseSize(value)
		p, err := all.CanonicalParams(kind, engines.Params{name: value})
		if err != nil {
			return
		}
		again, err := all.CanonicalParams(kind, p)
		if err != nil || !maps.Equal(again, p) {
			t.Fatalf("CanonicalParams(%s, %v) = %v, %v: not a fixed point", kind, p, again, err)
		}
	})
}

// TestFuzzTemplate checks the seed material of FuzzPlantedManifest: one
// committed version per engine, with its runs.
func TestFuzzTemplate(t *testing.T) {
	start := time.Now()
	if err := loadTemplate(); err != nil {
		t.Fatal(err)
	}
	if len(template.manifests) != len(all.Kinds()) || len(template.objects) == 0 {
		t.Fatalf("template: %d manifests, %d runs", len(template.manifests), len(template.objects))
	}
	t.Logf("template of %d manifests and %d runs built in %s", len(template.manifests), len(template.objects), time.Since(start).Round(time.Millisecond))
}
