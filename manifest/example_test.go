package manifest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// Commit a snapshot whose runs are already in the remote, read the latest
// version back, and see what a second writer gets.
func ExampleCommit() {
	ctx := context.Background()
	store := objstore.NewMem()

	m := &manifest.Manifest{
		StoreID:  "orders-7",
		Version:  1,
		WriterID: "worker-a",
		Created:  time.Date(2025, 11, 27, 12, 0, 0, 0, time.UTC),
		Engine:   "lsm",
		Runs:     []engines.RunInfo{{Name: "0000000000000001-a1b2c3d4.sst", Size: 4096, CRC32C: 0xdeadbeef}},
		Metadata: map[string]string{"offset": "1234"},
		Stats:    manifest.Stats{NewRuns: 1, NewBytes: 4096},
	}
	if err := manifest.Commit(ctx, store, m); err != nil {
		fmt.Println("commit:", err)
		return
	}

	latest, err := manifest.Latest(ctx, store)
	if err != nil {
		fmt.Println("latest:", err)
		return
	}
	fmt.Println(manifest.Key(latest.Version), latest.Runs[0].Name, latest.Metadata["offset"])

	other := &manifest.Manifest{Version: 1, WriterID: "worker-b", Engine: "lsm"}
	err = manifest.Commit(ctx, store, other)
	fmt.Println(errors.Is(err, manifest.ErrFenced))

	_, err = manifest.Load(ctx, store, 3)
	fmt.Println(err)
	// Output:
	// manifests/00000000000000000001 0000000000000001-a1b2c3d4.sst 1234
	// true
	// manifest: version 3 does not exist; nearest: 1 (latest 1)
}
