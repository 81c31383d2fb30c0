// Command tierkv is the operator's tool for tierkv stores: it lists, shows,
// verifies and restores the snapshot versions a store keeps in an object
// store, applies retention and garbage collection, reads and writes keys of a
// local store, and runs a crash-and-recover demo. Run "tierkv --help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
