package faultstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/faultstore"
	"github.com/tierkv/tierkv/objstore/objstoretest"
)

func TestConformanceWithoutRules(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return faultstore.New(objstore.NewMem(), 1)
	})
}

func putString(s objstore.Store, key, v string, ifAbsent bool) error {
	return s.Put(context.Background(), key, strings.NewReader(v), int64(len(v)), objstore.PutOptions{IfAbsent: ifAbsent})
}

func TestStatusKinds(t *testing.T) {
	for _, tc := range []struct {
		kind faultstore.Kind
		code int
	}{{faultstore.InternalError, 500}, {faultstore.Unavailable, 503}, {faultstore.TooManyRequests, 429}, {faultstore.Conflict, 409}} {
		inner := objstore.NewMem()
		s := faultstore.New(inner, 1, faultstore.FailNth(0, tc.kind))
		err := putString(s, "k", "v", true)
		var se *objstore.StatusError
		if !errors.As(err, &se) || se.Code != tc.code || se.Op != "put" || se.Key != "k" {
			t.Fatalf("%v: err = %v, want StatusError %d", tc.kind, err, tc.code)
		}
		if !errors.Is(err, faultstore.ErrInjected) || !objstore.Retryable(err) {
			t.Fatalf("%v: %v must match ErrInjected and be temporary", tc.kind, err)
		}
		if _, err := inner.Head(context.Background(), "k"); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("%v: the failed put reached the store", tc.kind)
		}
		// Times: 1, so the retry goes through.
		if err := putString(s, "k", "v", true); err != nil {
			t.Fatalf("%v: retry: %v", tc.kind, err)
		}
	}
}

func TestTimeout(t *testing.T) {
	s := faultstore.New(objstore.NewMem(), 1, faultstore.Rule{Ops: []faultstore.Op{faultstore.OpHead}, Kind: faultstore.Timeout})
	_, err := s.Head(context.Background(), "k")
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() || !objstore.Retryable(err) {
		t.Fatalf("timeout: err = %v", err)
	}
	if err := putString(s, "k", "v", false); err != nil {
		t.Fatalf("a put is not selected by a head rule: %v", err)
	}
}

func TestAmbiguousPut(t *testing.T) {
	inner := objstore.NewMem()
	s := faultstore.New(inner, 1, faultstore.Rule{Ops: []faultstore.Op{faultstore.OpPut}, KeyPrefix: "manifests/", Times: 1, Kind: faultstore.Ambiguous})
	err := putString(s, "manifests/1", "mine", true)
	if err == nil || !objstore.Retryable(err) {
		t.Fatalf("ambiguous put: err = %v, want a temporary error", err)
	}
	// It happened underneath: the retry of the create loses to itself.
	if err := putString(s, "manifests/1", "mine", true); !errors.Is(err, objstore.ErrPrecondition) {
		t.Fatalf("retry after an ambiguous create: %v, want ErrPrecondition", err)
	}
	rc, _, err := s.Get(context.Background(), "manifests/1")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	if string(data) != "mine" {
		t.Fatalf("content %q", data)
	}
}

func TestResetMidBody(t *testing.T) {
	inner := objstore.NewMem()
	data := bytes.Repeat([]byte("0123456789"), 100)
	if err := inner.Put(context.Background(), "runs/r", bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	s := faultstore.New(inner, 1, faultstore.Rule{Ops: []faultstore.Op{faultstore.OpGet, faultstore.OpGetRange}, Kind: faultstore.Reset})
	rc, info, err := s.Get(context.Background(), "runs/r")
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("get with a mid-body reset must open fine: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, syscall.ECONNRESET) || !objstore.Retryable(err) {
		t.Fatalf("read: err = %v, want ECONNRESET", err)
	}
	if len(got) != len(data)/2 || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("read %d bytes before the reset, want %d correct ones", len(got), len(data)/2)
	}
	rc, err = s.GetRange(context.Background(), "runs/r", 100, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(rc)
	if !errors.Is(err, syscall.ECONNRESET) || len(got) != 450 {
		t.Fatalf("range read %d bytes, err %v; want 450 then ECONNRESET", len(got), err)
	}
	// Reset of a non-read op fails up front.
	s.SetRules(faultstore.Rule{Kind: faultstore.Reset})
	if err := s.Delete(context.Background(), "runs/r"); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("delete with reset: %v", err)
	}
	if _, err := inner.Head(context.Background(), "runs/r"); err != nil {
		t.Fatalf("the reset delete reached the store: %v", err)
	}
}

func TestSlow(t *testing.T) {
	s := faultstore.New(objstore.NewMem(), 1, faultstore.Rule{Kind: faultstore.Slow})
	if err := putString(s, "k", "v", false); err != nil {
		t.Fatalf("slow put: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Head(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("slow head with a canceled context: %v", err)
	}
}

// TestSweep is the error-injection sweep: fail call n for n = 0, 1, ... until
// the workload runs clean; each failure must surface as an error.
func TestSweep(t *testing.T) {
	workload := func(s objstore.Store) error {
		for i := range 3 {
			if err := putString(s, fmt.Sprintf("runs/%d", i), "data", true); err != nil {
				return err
			}
		}
		if _, err := s.List(context.Background(), "runs/"); err != nil {
			return err
		}
		return putString(s, "manifests/1", "m", true)
	}
	n := 0
	for ; n < 100; n++ {
		s := faultstore.New(objstore.NewMem(), 1, faultstore.FailNth(n, faultstore.Unavailable))
		err := workload(s)
		if len(s.Injected()) == 0 {
			if err != nil {
				t.Fatalf("clean run failed: %v", err)
			}
			break
		}
		if err == nil {
			t.Fatalf("fault %v was swallowed", s.Injected())
		}
	}
	if n != 5 {
		t.Fatalf("workload has %d calls, want 5", n)
	}
}

func TestSeeded(t *testing.T) {
	run := func(seed uint64) string {
		s := faultstore.New(objstore.NewMem(), seed, faultstore.Rule{Prob: 0.3, Kind: faultstore.Unavailable})
		for i := range 50 {
			_ = putString(s, fmt.Sprintf("k%d", i), "v", false)
		}
		return fmt.Sprint(s.Injected())
	}
	a, b, c := run(7), run(7), run(8)
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if a == c {
		t.Fatalf("different seeds, same faults: %s", a)
	}
	if a == "[]" {
		t.Fatalf("no fault injected at p=0.3 over 50 calls")
	}
}
