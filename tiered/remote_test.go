package tiered

import (
	"context"
	"errors"
	"testing"

	"github.com/tierkv/tierkv/objstore/faultstore"
)

// TestRemoteReadsRetried: transient failures of the listings and manifest
// reads that Open, Verify, Forget and GC make are retried instead of failing
// the operation; a failure that outlasts the retries is still reported.
func TestRemoteReadsRetried(t *testing.T) {
	mem, w, _, v2 := twoVersions(t, "lsm")
	w.Close()
	reads := []faultstore.Op{faultstore.OpList, faultstore.OpGet, faultstore.OpHead}
	fs := faultstore.New(mem, 1,
		faultstore.Rule{Ops: reads, KeyPrefix: "manifests/", Times: 3, Kind: faultstore.Unavailable},
		faultstore.Rule{Ops: reads, Times: 2, Kind: faultstore.Reset},
	)
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: fs})
	checkState(t, s, v2, nil, "opened through read faults")
	ctx := context.Background()
	fs.SetRules(faultstore.Rule{Ops: reads, Times: 3, Kind: faultstore.TooManyRequests})
	if probs, err := Verify(ctx, fs, nil, true); err != nil || len(probs) != 0 {
		t.Fatalf("Verify through read faults: %v %v", probs, err)
	}
	fs.SetRules(faultstore.Rule{Ops: reads, Times: 2, Kind: faultstore.Timeout})
	if _, err := GC(ctx, fs, 0, true); err != nil {
		t.Fatalf("GC dry run through read faults: %v", err)
	}
	if n := len(fs.Injected()); n != 10 {
		t.Fatalf("%d faults injected, want 10: %v", n, fs.Injected())
	}
	// A fault that outlasts the retries still fails the read.
	fs.SetRules(faultstore.Rule{Ops: []faultstore.Op{faultstore.OpList}, Kind: faultstore.Unavailable})
	if _, err := Verify(ctx, fs, nil, false); err == nil || !errors.Is(err, faultstore.ErrInjected) {
		t.Fatalf("Verify with the remote listing down: %v", err)
	}
}
