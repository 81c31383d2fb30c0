package objstore_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/objstore"
)

func TestCounting(t *testing.T) {
	ctx := context.Background()
	c := objstore.NewCounting(objstore.NewMem())
	c.SetLogging(true)
	if err := c.Put(ctx, "runs/x", strings.NewReader("hello"), 5, objstore.PutOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "runs/x", strings.NewReader("again"), 5, objstore.PutOptions{IfAbsent: true}); !errors.Is(err, objstore.ErrPrecondition) {
		t.Fatal(err)
	}
	rc, _, err := c.Get(ctx, "runs/x")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(rc)
	rc.Close()
	rc, err = c.GetRange(ctx, "runs/x", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(rc)
	rc.Close()
	if _, err := c.Head(ctx, "runs/y"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatal(err)
	}
	if _, err := c.List(ctx, "runs/"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "runs/x"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PUT runs/x 5 if-absent",
		"PUT runs/x 5 if-absent (exists)",
		"GET runs/x",
		"RANGE runs/x 1+2",
		"HEAD runs/y (not found)",
		"LIST runs/",
		"DELETE runs/x",
	}
	if got := c.Log(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	st := c.Stats()
	wantStats := objstore.CountingStats{Puts: 2, PutIfAbsent: 2, Gets: 1, GetRanges: 1, Heads: 1, Lists: 1, Deletes: 1,
		BytesPut: 5, BytesGot: 7, Errors: 2, PreconditionFailed: 1, NotFound: 1}
	if st != wantStats {
		t.Fatalf("stats = %+v, want %+v", st, wantStats)
	}
	if st.Ops() != 7 {
		t.Fatalf("ops = %d", st.Ops())
	}
	c.Reset()
	if st := c.Stats(); st != (objstore.CountingStats{}) || len(c.Log()) != 0 {
		t.Fatalf("after reset: %+v %v", st, c.Log())
	}
	c.SetLogging(false)
	_, _ = c.Head(ctx, "a")
	if len(c.Log()) != 0 {
		t.Fatalf("logged while logging is off")
	}
}
