package engines

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// failRemoveFS fails every Remove.
type failRemoveFS struct{ OSFS }

func (failRemoveFS) Remove(string) error { return errors.New("injected remove failure") }

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestReadStateFile(t *testing.T) {
	t.Run("Present", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, "CURRENT")
		b, found, err := ReadStateFile(OSFS{}, dir, "CURRENT")
		if err != nil || !found || string(b) != "CURRENT" {
			t.Fatalf("ReadStateFile = %q, %v, %v", b, found, err)
		}
	})
	t.Run("NewDirWithTemporaries", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, "a"+TempSuffix, "CURRENT"+TempSuffix)
		b, found, err := ReadStateFile(OSFS{}, dir, "CURRENT")
		if err != nil || found || b != nil {
			t.Fatalf("ReadStateFile = %q, %v, %v; want a new engine", b, found, err)
		}
	})
	t.Run("MissingWithFiles", func(t *testing.T) {
		dir := t.TempDir()
		names := []string{"0000000000000001-0badcafe.sst", "0000000000000002-0badcafe.sst", "x.tmp", "notes", "z"}
		writeFiles(t, dir, names...)
		_, _, err := ReadStateFile(OSFS{}, dir, "CURRENT")
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
		msg := err.Error()
		for _, want := range []string{filepath.Join(dir, "CURRENT"), "4 entries", "0000000000000001-0badcafe.sst", "..."} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
		slices.Sort(names)
		if got := listDir(t, dir); !slices.Equal(got, names) {
			t.Fatalf("directory now holds %v, want %v", got, names)
		}
	})
	t.Run("Unreadable", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "CURRENT"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, found, err := ReadStateFile(OSFS{}, dir, "CURRENT")
		if err == nil || found || !strings.Contains(err.Error(), "CURRENT") {
			t.Fatalf("ReadStateFile of a directory = %v, %v; want an error naming CURRENT", found, err)
		}
	})
}

func TestRemoveLeftovers(t *testing.T) {
	live := func(name string) bool { return name == "0000000000000001-0badcafe.sst" }
	names := []string{
		"0000000000000001-0badcafe.sst",  // live
		"0000000000000002-0badcafe.sst",  // this engine's, not live: removed
		"0000000000000003-0badcafe.hlog", // another engine's extension: kept
		"0000000000000004-0badcafe.sst" + TempSuffix,
		"CURRENT",
		"notes",
	}
	t.Run("Removes", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, names...)
		RemoveLeftovers(OSFS{}, dir, slog.New(slog.DiscardHandler), live, "sst")
		want := []string{"0000000000000001-0badcafe.sst", "0000000000000003-0badcafe.hlog", "CURRENT", "notes"}
		if got := listDir(t, dir); !slices.Equal(got, want) {
			t.Fatalf("directory holds %v, want %v", got, want)
		}
	})
	t.Run("FailureIsAWarning", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, names...)
		var logged bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logged, nil))
		RemoveLeftovers(failRemoveFS{}, dir, log, live, "sst")
		for _, n := range []string{"0000000000000002-0badcafe.sst", "0000000000000004-0badcafe.sst" + TempSuffix} {
			if !strings.Contains(logged.String(), "level=WARN msg=\"engines: remove leftover file\" dir="+dir+" file="+n) {
				t.Errorf("no warning for %s in log:\n%s", n, logged.String())
			}
		}
		slices.Sort(names)
		if got := listDir(t, dir); !slices.Equal(got, names) {
			t.Fatalf("directory holds %v, want %v", got, names)
		}
	})
}
