package uploader_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/uploader"
)

// Upload a sealed run in the background and wait until it is durable, as a
// snapshot does before it commits its manifest.
func ExampleUploader() {
	dir, err := os.MkdirTemp("", "uploader-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	store := objstore.NewMem()
	u, err := uploader.New(store, uploader.Options{Concurrency: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer u.Close()

	run, err := engines.WriteRun(engines.OSFS{}, dir, "0000000000000001-a1b2c3d4.sst", []byte("sealed bytes"))
	if err != nil {
		fmt.Println(err)
		return
	}
	u.Enqueue(run, filepath.Join(dir, run.Name)) // from the engine's RunSealed callback

	if err := u.Wait(context.Background(), []string{run.Name}); err != nil {
		fmt.Println("wait:", err)
		return
	}
	info, err := store.Head(context.Background(), "runs/"+run.Name)
	if err != nil {
		fmt.Println(err)
		return
	}
	st := u.Stats()
	fmt.Println(u.Present(run.Name), info.Size, info.Metadata["crc32c"] == fmt.Sprintf("%08x", run.CRC32C))
	fmt.Println(st.Uploads, st.Bytes, st.Retries)
	// Output:
	// true 12 true
	// 1 12 0
}
