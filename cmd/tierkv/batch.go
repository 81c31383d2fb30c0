package main

import (
	"bufio"
	"errors"
	"fmt"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/tiered"
	"github.com/urfave/cli/v2"
)

// maxBatchLine bounds one input line: a put of the largest value in hex.
const maxBatchLine = 2*engines.MaxValueSize + 2*engines.MaxKeySize + 64

func batchCommand() *cli.Command {
	return &cli.Command{
		Name:  "batch",
		Usage: "apply operations read from standard input, one per line",
		Description: "Opens the store in --dir from its local state (with --remote if given, which\n" +
			"snapshot and restore need) and applies one operation per line:\n\n" +
			"  put KEY VALUE            set (tokens hex:DIGITS are raw bytes; hex: alone is empty)\n" +
			"  del KEY                  delete\n" +
			"  get KEY                  print the value, or (absent)\n" +
			"  snapshot [NAME=VALUE..]  commit a version; prints its number\n" +
			"  restore VERSION|latest   switch to a version; prints its number\n\n" +
			"Blank lines and lines starting with # are skipped. A bad line stops the batch with\n" +
			"its line number and exit status 2; the lines before it stay applied.",
		Action: runBatch,
	}
}

// batchLineError names the input line an error comes from.
type batchLineError struct {
	line int
	err  error
}

func (e *batchLineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *batchLineError) Unwrap() error { return e.err }

func runBatch(c *cli.Context) (err error) {
	if c.NArg() > 0 {
		return usagef("batch takes no arguments, got %q: operations come from standard input", c.Args().First())
	}
	g, err := loadGlobals(c)
	if err != nil {
		return err
	}
	s, err := openLocal(c, g, g.remote != "", false)
	if err != nil {
		return err
	}
	defer closeLocal(s, &err)
	out := bufio.NewWriter(c.App.Writer)
	defer func() {
		if ferr := out.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("write output: %w", ferr)
		}
	}()

	sc := bufio.NewScanner(c.App.Reader)
	sc.Buffer(make([]byte, 0, 64<<10), maxBatchLine)
	n := 0
	for sc.Scan() {
		n++
		op, ok, err := parseBatchLine(sc.Text())
		if err != nil {
			return &usageError{msg: (&batchLineError{line: n, err: err}).Error()}
		}
		if !ok {
			continue
		}
		if err := applyBatchOp(c, s, op, out); err != nil {
			return &batchLineError{line: n, err: err}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return usagef("line %d: longer than %d bytes", n+1, maxBatchLine)
		}
		return fmt.Errorf("read standard input after line %d: %w", n, err)
	}
	return nil
}

// applyBatchOp runs one parsed operation against s.
func applyBatchOp(c *cli.Context, s *tiered.Store, op batchOp, out *bufio.Writer) error {
	switch op.Kind {
	case batchPut:
		if err := s.Set(op.Key, op.Value); err != nil {
			return fmt.Errorf("put: %w", err)
		}
	case batchDel:
		if err := s.Delete(op.Key); err != nil {
			return fmt.Errorf("del: %w", err)
		}
	case batchGet:
		v, found, err := s.Get(op.Key)
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		if !found {
			fmt.Fprintln(out, absentText)
		} else {
			fmt.Fprintln(out, displayValue(v))
		}
	case batchSnapshot:
		res, err := s.Snapshot(c.Context, tiered.WithMetadata(op.Meta))
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		fmt.Fprintln(out, res.Version)
	case batchRestore:
		res, err := s.Restore(c.Context, op.Version)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		fmt.Fprintln(out, res.Version)
	default:
		return fmt.Errorf("operation kind %d not handled", op.Kind)
	}
	return nil
}
