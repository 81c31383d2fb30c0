package tiered_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tierkv/tierkv/tiered"
)

// A worker stores state, snapshots it with its source offset at a checkpoint
// barrier, and a second worker elsewhere takes over from that snapshot.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "tierkv-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	remote := "file://" + filepath.Join(tmp, "bucket") // or s3://bucket/prefix, minio://host:port/bucket/prefix

	// Worker 1: open (a new store), write, snapshot with metadata.
	s, err := tiered.Open(ctx, tiered.Options{Dir: filepath.Join(tmp, "worker1"), Remote: remote, Engine: "lsm"})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Set([]byte("user:42"), []byte("clicks=7")); err != nil {
		log.Fatal(err)
	}
	res, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"kafka-offset": "1234"}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed version", res.Version)
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}

	// Worker 2, on another machine: Open restores the latest version.
	s2, err := tiered.Open(ctx, tiered.Options{Dir: filepath.Join(tmp, "worker2"), Remote: remote})
	if err != nil {
		log.Fatal(err)
	}
	defer s2.Close()
	v, found, err := s2.Get([]byte("user:42"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("version %d, replay from offset %s, user:42 = %s (found %v)\n",
		s2.Version(), s2.Metadata()["kafka-offset"], v, found)
	// Output:
	// committed version 1
	// version 1, replay from offset 1234, user:42 = clicks=7 (found true)
}
